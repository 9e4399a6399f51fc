# floaty container image: the floaty binary and its wrappers on a slim
# Debian with CA certificates. The entrypoint is floaty-docker, which puts
# floaty's JSON log on PID 1's stdout/stderr (what `docker logs` shows).
#
#   docker build -t floaty .
#   docker run -v /etc/keepalived:/etc/keepalived:ro -v /run/keepalived:/run/keepalived floaty
#
# By default it runs floaty's FIFO daemon on /run/keepalived/floaty.fifo
# (keepalived: `vrrp_notify_fifo /run/keepalived/floaty.fifo`). See README.

FROM rust:1.89-slim-bookworm AS build
# Build as an unprivileged user: nothing in the build needs root.
RUN useradd --create-home --uid 10001 builder
USER 10001
WORKDIR /home/builder/floaty
COPY --chown=10001:10001 . .
RUN cargo build --release --locked --bin floaty

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /home/builder/floaty/target/release/floaty /usr/bin/floaty
COPY wrapper-scripts/floaty-docker wrapper-scripts/floaty-notify /usr/share/floaty/
COPY wrapper-scripts/floaty-self-test wrapper-scripts/floaty-status /usr/lib/nagios/plugins/
COPY examples/ /usr/share/doc/floaty/examples/
# floaty signals refreshers, takes flock()s in /var/lock and reads the root-
# owned 0600 FIFO keepalived creates: it runs as root, like keepalived.
ENTRYPOINT ["/usr/share/floaty/floaty-docker"]
CMD ["--fifo", "/run/keepalived/floaty.fifo"]
