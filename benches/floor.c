/* The floor for "exec of a MASTER call -> first byte of its first request":
 * what a program costs that does nothing but what it must. It reads the
 * endpoint and token from floaty.yml (argv[1]), connects, and sends the
 * PATCH; no lock, no fork, no TLS. Built static (no dynamic loader), by
 * benches/health.rs, and timed the same way as floaty. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char *value_of(char *text, const char *key) {
    char *p = strstr(text, key);
    if (!p) return NULL;
    p += strlen(key);
    while (*p == ' ' || *p == '"') p++;
    char *end = p + strcspn(p, "\"\n");
    *end = 0;
    return p;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    FILE *f = fopen(argv[1], "r");
    if (!f) return 1;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    static char copy[65536];
    memcpy(copy, buf, n + 1);
    char *endpoint = value_of(buf, "endpoint:");
    char *token = value_of(copy, "token:");
    if (!endpoint || !token) return 1;
    /* http://HOST:PORT/ */
    char host[64];
    int port;
    if (sscanf(endpoint, "http://%63[^:]:%d", host, &port) != 2) return 1;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, host, &a.sin_addr);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) return 1;
    const char *body = "{\"server\":\"11111111-2222-4333-8444-555555555555\"}";
    char req[1024];
    int len = snprintf(req, sizeof req,
                       "PATCH /v1/floating-ips/192.0.2.10 HTTP/1.1\r\nHost: %s:%d\r\n"
                       "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                       "Content-Length: %zu\r\n\r\n%s",
                       host, port, token, strlen(body), body);
    if (write(s, req, len) != len) return 1;
    close(s);
    return 0;
}
