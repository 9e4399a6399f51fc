#!/usr/bin/env python3
"""The FIFO daemon's delay from a line written to its FIFO to its
"keepalived event" log line (--json-log timestamps), N instances, ROUNDS
rounds of N MASTER lines then N BACKUP lines, GAP seconds apart (env GAP,
default 3; 0.05 makes each burst arrive while the previous is handled).
No keepalived runs, as when systemd starts the daemon before keepalived.
usage: fifo-stall.py FLOATY MOCK [N] [ROUNDS]   (env DETAIL=1: every line)"""
import json, os, subprocess, sys, tempfile, time
BIN = sys.argv[1]
MOCK = sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 50
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
d = tempfile.mkdtemp(prefix="stall-")
TOKEN = "s3cr3t-t0ken-floaty-test"
A = "11111111-2222-4333-8444-555555555555"
ips = [f"203.0.113.{10+i}" for i in range(N)]
args = [MOCK, "cloudscale", "--token", TOKEN, "--server", A + "=lb-a"]
for ip in ips:
    args += ["--floating-ip", ip]
mock = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
url = mock.stdout.readline().strip()
with open(f"{d}/keepalived.conf", "w") as f:
    for i in range(N):
        f.write(f"vrrp_instance VI_{i+1} {{\n interface veth0\n virtual_router_id {51+i}\n priority 100\n virtual_ipaddress {{\n  {ips[i]}/24 dev veth0\n }}\n}}\n")
os.mkdir(f"{d}/lock")
with open(f"{d}/floaty.yml", "w") as f:
    f.write(f"provider: cloudscale\ncloudscale:\n  endpoint: {url}\n  token: {TOKEN}\n  server-uuid: {A}\n"
            f"keepalived-config: {d}/keepalived.conf\nlock-file-template: {d}/lock/floaty.%s.lock\n"
            f"refresh-interval: 2s\nverify-master: {os.environ.get('VERIFY','off')}\n")
fifo = f"{d}/fifo"
os.mkfifo(fifo)
log = open(f"{d}/log", "w")
daemon = subprocess.Popen([BIN, "--log-target", "stderr", "--json-log", "--fifo", f"{d}/floaty.yml", fifo], stderr=log, stdin=subprocess.DEVNULL)
w = os.open(fifo, os.O_RDWR)
time.sleep(0.5)
written = []  # (time, state, name)
def burst(state):
    for i in range(N):
        t = time.time()
        os.write(w, f'INSTANCE "VI_{i+1}" {state} 100\n'.encode())
        written.append((t, state, f"VI_{i+1}"))
gap = float(os.environ.get("GAP", "3"))
for r in range(ROUNDS):
    burst("MASTER"); time.sleep(gap)
    burst("BACKUP"); time.sleep(gap)
time.sleep(0.5)
rss = open(f"/proc/{daemon.pid}/status").read()
daemon.terminate(); daemon.wait()
mock.stdin.close(); mock.wait()
import datetime
events = {}
for line in open(f"{d}/log"):
    try:
        j = json.loads(line)
    except Exception:
        continue
    fields = j
    if fields.get("message") == "keepalived event":
        ts = datetime.datetime.fromisoformat(j["timestamp"].replace("Z", "+00:00")).timestamp()
        events.setdefault((fields.get("state"), fields.get("name")), []).append(ts)
lat = {"MASTER": [], "BACKUP": []}
seen = {}
for t, state, name in written:
    k = (state, name)
    idx = seen.get(k, 0); seen[k] = idx + 1
    ts = events.get(k, [])
    if idx < len(ts):
        lat[state].append((ts[idx] - t) * 1000)
if os.environ.get("DETAIL"):
    seen2 = {}
    for t, state, name in written:
        k=(state,name); idx=seen2.get(k,0); seen2[k]=idx+1
        ts=events.get(k,[])
        if idx < len(ts): print(f"{t:.3f} {state} {name} {(ts[idx]-t)*1000:.1f}")
for s, l in lat.items():
    l.sort()
    if l:
        print(f"{s}: n={len(l)} median={l[len(l)//2]:.1f} ms p90={l[int(len(l)*0.9)]:.1f} ms max={l[-1]:.1f} ms")
print(d)
