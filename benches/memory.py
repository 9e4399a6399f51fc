#!/usr/bin/env python3
"""RSS and PSS (/proc/PID/smaps_rollup) of N notify-mode refreshers vs one
FIFO daemon refreshing N instances, against the local mock API.
usage: memory.py FLOATY MOCK [N]"""
import os, subprocess, sys, tempfile, time
BIN, MOCK = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 50
d = tempfile.mkdtemp(prefix="floaty-mem-")
TOKEN = "s3cr3t-t0ken-floaty-test"
A = "11111111-2222-4333-8444-555555555555"
ips = [f"203.0.113.{10+i}" for i in range(N)]
args = [MOCK, "cloudscale", "--token", TOKEN, "--server", A + "=lb-a"] + sum((["--floating-ip", ip] for ip in ips), [])
mock = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
url = mock.stdout.readline().strip()
with open(f"{d}/keepalived.conf", "w") as f:
    for i in range(N):
        f.write(f"vrrp_instance VI_{i+1} {{\n interface veth0\n virtual_router_id {51+i}\n priority 100\n virtual_ipaddress {{\n  {ips[i]}/32 dev veth0\n }}\n}}\n")
os.mkdir(f"{d}/lock")
cfg = f"{d}/floaty.yml"
with open(cfg, "w") as f:
    f.write(f"provider: cloudscale\ncloudscale:\n  endpoint: {url}\n  token: {TOKEN}\n  server-uuid: {A}\n"
            f"keepalived-config: {d}/keepalived.conf\nlock-file-template: {d}/lock/floaty.%s.lock\n"
            f"refresh-interval: 2s\nverify-master: off\n")
os.chmod(cfg, 0o600)
def rollup(pid):
    out = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        p = line.split()
        if p[0] in ("Rss:", "Pss:"):
            out[p[0][:-1]] = int(p[1])
    return out
def held_locks():
    """Lock files naming a live holder."""
    n = 0
    for name in os.listdir(f"{d}/lock"):
        try:
            w = open(f"{d}/lock/{name}").read().split()
        except OSError:
            continue
        n += len(w) >= 2 and os.path.exists(f"/proc/{w[1]}")
    return n
def holders():
    pids = set()
    for name in os.listdir(f"{d}/lock"):
        try:
            w = open(f"{d}/lock/{name}").read().split()
        except OSError:
            continue
        if len(w) >= 2 and w[0] in ("floaty-refresher", "floaty-daemon") and os.path.exists(f"/proc/{w[1]}"):
            pids.add(int(w[1]))
    return pids
log = open(f"{d}/log", "w")
# notify mode
for i in range(N):
    subprocess.run([BIN, "--log-target", "stderr", cfg, "INSTANCE", f"VI_{i+1}", "MASTER", "100"], stderr=log, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, check=True)
time.sleep(5)  # two verify rounds: steady state
pids = holders()
rss = pss = 0
for p in pids:
    r = rollup(p); rss += r["Rss"]; pss += r["Pss"]
print(f"notify mode: {len(pids)} refreshers: RSS {rss} KiB ({rss/1024:.1f} MiB), PSS {pss} KiB ({pss/1024:.1f} MiB); per refresher RSS {rss/len(pids):.0f} KiB, PSS {pss/len(pids):.0f} KiB")
for i in range(N):
    subprocess.run([BIN, "--log-target", "stderr", cfg, "INSTANCE", f"VI_{i+1}", "BACKUP", "100"], stderr=log, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, check=True)
# FIFO mode
fifo = f"{d}/fifo"; os.mkfifo(fifo)
daemon = subprocess.Popen([BIN, "--log-target", "stderr", "--fifo", cfg, fifo], stderr=log, stdin=subprocess.DEVNULL)
w = os.open(fifo, os.O_RDWR)
time.sleep(0.5)
idle = rollup(daemon.pid)
for i in range(N):
    os.write(w, f'INSTANCE "VI_{i+1}" MASTER 100\n'.encode())
time.sleep(5)
r = rollup(daemon.pid)
print(f"FIFO mode: one daemon, {held_locks()} instance locks held: RSS {r['Rss']} KiB ({r['Rss']/1024:.1f} MiB), PSS {r['Pss']} KiB ({r['Pss']/1024:.1f} MiB); idle before the MASTER lines RSS {idle['Rss']} KiB, PSS {idle['Pss']} KiB")
daemon.terminate(); daemon.wait()
mock.stdin.close(); mock.wait()
