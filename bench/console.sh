#!/usr/bin/env bash
# ner-console in headless Chromium (docs/console.md): a registry seeded with JOBS jobs (default
# 10,000) and one model name with VERSIONS versions (default 1,000); the time from navigation to
# the page having drawn its data (the page marks it, window.nerRendered) for the jobs page and the
# model's versions page, RUNS times each (median and worst); then PAGES clients (default 50)
# following the event stream as open pages do, nothing happening, and the console's CPU over IDLE
# seconds (default 30) as a share of one core. (The clients are plain HTTP streams: one browser
# holds at most 6 HTTP/1.1 connections to a host, so 50 pages are 50 browsers, or HTTP/2 through
# a proxy.)
#   Needs chromium and chromium-driver (Debian packages; `make bench` installs them).
set -euo pipefail
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/bin}
JOBS=${JOBS:-10000}
VERSIONS=${VERSIONS:-1000}
RUNS=${RUNS:-5}
PAGES=${PAGES:-50}
IDLE=${IDLE:-30}
command -v chromedriver > /dev/null && command -v chromium > /dev/null ||
  { echo "console.sh: chromium and chromedriver are not installed (apt-get install chromium chromium-driver)" >&2; exit 69; }
work=$(mktemp -d /tmp/ner-bench-console.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done; wait 2> /dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

home="$work/home"
token=$("$BIN/ner-console" user add bench --role admin --home "$home" --quiet | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
echo "seeding $JOBS jobs and $VERSIONS versions of one model..."
python3 - "$home/registry.sqlite" "$JOBS" "$VERSIONS" <<'PY'
import json, sqlite3, sys, uuid, datetime, random
db, jobs, versions = sqlite3.connect(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
t0 = datetime.datetime(2026, 1, 1)
ts = lambda s: (t0 + datetime.timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
statuses = ["registered"] * 6 + ["failed", "queued", "running", "cancelled"]
rng = random.Random(1)
with db:
    for i in range(jobs):
        name = f"news{i % 40}"
        jid = f"{name}-{uuid.UUID(int=rng.getrandbits(128))}"
        st = rng.choice(statuses)
        rec = {"job_id": jid, "name": name, "created_at": ts(i * 60), "attempt": 1, "priority": 0, "schema": 1,
               "spec": {"train": "/data/train.txt", "epochs": 20}}
        db.execute("INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?)",
                   (jid, name, st, 1, "exit 1: diverged" if st == "failed" else None, str(10000 + i), None, ts(i * 60 + 600), json.dumps(rec)))
        for k, s in enumerate(["queued", "running", st] if st not in ("queued", "running") else ["queued"]):
            db.execute("INSERT INTO transitions (job_id, status, attempt, at, host, pid, detail) VALUES (?,?,?,?,?,?,?)",
                       (jid, s, 1, ts(i * 60 + k * 300), "node1", 4242, None))
    for v in range(1, versions + 1):
        mid = f"big-{uuid.UUID(int=rng.getrandbits(128))}"
        f1 = 0.80 + 0.1 * rng.random()
        per = {t: {"precision": f1, "recall": f1, "f1": f1, "support": 100} for t in ["LOC", "MISC", "ORG", "PER"]}
        metrics = {"dev": {"f1": f1, "precision": f1, "recall": f1, "per_type": per}, "test": {"f1": f1 - 0.02}}
        rec = {"name": "big", "model_id": mid, "version": v, "metrics": metrics, "created_at": ts(v * 3600)}
        db.execute("""INSERT INTO models (model_id, name, version, status, job_id, parent_id, artifact, sha256, bytes, metrics,
                      record, created_at, registered_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                   (mid, "big", v, "registered", None, None, "/nonexistent/" + mid + ".tar.zst", "%064x" % rng.getrandbits(256),
                    5_000_000, json.dumps(metrics), json.dumps(rec), ts(v * 3600), ts(v * 3600)))
PY

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/ner-console" --home "$home" --port "$port" --quiet 2> "$work/console.log" &
console=$!; pids+=("$console")
dport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
chromedriver --port="$dport" > /dev/null 2>&1 &
pids+=("$!")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && curl -sf "http://127.0.0.1:$dport/status" > /dev/null && break; sleep 0.1; done

python3 - "$port" "$dport" "$token" "$RUNS" "$PAGES" "$IDLE" "$console" <<'PY'
import json, os, statistics, sys, time, urllib.request
port, dport, token, runs, pages, idle, console = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
base, wd = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{dport}"
def call(method, path, body=None):
    req = urllib.request.Request(wd + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=300)).get("value")
caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {"binary": "/usr/bin/chromium",
        "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"]}}}}
sid = call("POST", "/session", caps)["sessionId"]
s = f"/session/{sid}"
run = lambda js: call("POST", s + "/execute/sync", {"script": js, "args": []})
call("POST", s + "/url", {"url": f"{base}/signin?token={token}"})
def measure(url, page, check):
    times = []
    for _ in range(runs):
        call("POST", s + "/url", {"url": "about:blank"})
        call("POST", s + "/url", {"url": url})
        t = None
        for _ in range(600):
            t = run(f"return document.body && document.body.dataset.rendered === '{page}' ? window.nerRendered : null")
            if t is not None: break
            time.sleep(0.02)
        times.append(t)
    n = run(check)
    print(f"  {url[len(base):]}: median {statistics.median(times):.0f} ms, worst {max(times):.0f} ms over {runs} loads ({n})")
print("render time in headless Chromium (navigation start to data drawn):")
measure(base + "/#/jobs", "jobs", "return document.getElementById('jobs-info').textContent + ' shown'")
measure(base + "/#/model/big", "model", "return document.getElementById('versions-info').textContent + ' shown, 100 a page'")
measure(base + "/#/models", "models", "return document.querySelectorAll('#models tbody tr').length + ' names'")

def ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
import http.client, socket
cookie = [c for c in call("GET", s + "/cookie") if c["name"] == "ner_session"][0]["value"]
streams = []
for i in range(pages):
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=idle + 30)
    conn.request("GET", "/api/events", headers={"Cookie": "ner_session=" + cookie, "Accept": "text/event-stream"})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream", r.status
    streams.append((conn, r))
time.sleep(2)
hz = os.sysconf("SC_CLK_TCK")
a, t0 = ticks(console), time.time()
time.sleep(idle)
b, t1 = ticks(console), time.time()
print(f"{len(streams)} clients following the event stream, nothing happening for {idle} s:")
print(f"  ner-console CPU {100 * (b - a) / hz / (t1 - t0):.2f}% of one core")
call("DELETE", s)
PY
