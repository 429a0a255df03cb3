#!/usr/bin/env bash
# Slurm dispatch overhead: queue 100 jobs with a trivial command, dispatch them through Slurm,
# and measure per job (a) queue -> Slurm submission (the registry's `queued` and `running`
# times; `running` is recorded when sbatch has answered) and (b) Slurm completion -> registry
# (the job's last act is to note the time; the registry's `done` time follows it).
# Prints medians, p95 and jobs/s submitted. Needs a running Slurm (../shared/tools/local-slurm.sh);
# prints "skipped" and exits 0 without one.
set -euo pipefail
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/bin}
N=${N:-100}
POLL=${POLL:-1}
if ! command -v sbatch >/dev/null 2>&1 || ! sinfo -h >/dev/null 2>&1; then
  echo "slurm bench skipped: no Slurm here (start one with ../shared/tools/local-slurm.sh)"
  exit 0
fi
work=$(mktemp -d /tmp/ner-bench-slurm.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "EU I-ORG" > "$work/train.txt"
for i in $(seq "$N"); do
  echo "{\"name\":\"bench\",\"train\":\"$work/train.txt\",\"seed\":$i,\"resources\":{\"cpus\":1,\"mem\":\"32M\",\"time\":\"5\"}}"
done > "$work/requests.ndjson"
home="$work/home"
"$BIN/ner-queue" --home "$home" --quiet < "$work/requests.ndjson" > /dev/null
t0=$(date +%s.%N)
"$BIN/ner-dispatch" --home "$home" --backend slurm --drain --max-running "$N" --poll "$POLL" \
  --command "cat > /dev/null; date +%s.%N > \"$work/end-\$NER_JOB_ID\"" > "$work/events.ndjson"
t1=$(date +%s.%N)
python3 - "$work" "$N" "$t0" "$t1" "$POLL" <<'PY'
import json, sys, os, statistics
from datetime import datetime
work, n, t0, t1, poll = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
def ts(s): return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
queued, running, done = {}, {}, {}
for line in open(f"{work}/events.ndjson"):
    e = json.loads(line)
    {"running": running, "done": done}.get(e["status"], {})[e["job_id"]] = ts(e["at"])
for name in os.listdir(f"{work}/home/spool/done"):
    rec = json.loads(open(f"{work}/home/spool/done/{name}").read())
    queued[rec["job_id"]] = ts(rec["created_at"])
assert len(done) == n, f"only {len(done)} of {n} jobs done"
submit = sorted(running[j] - queued[j] for j in running)
finish = sorted(done[j] - float(open(f"{work}/end-{j}").read()) for j in done)
p95 = lambda xs: xs[int(0.95 * (len(xs) - 1))]
span = max(running.values()) - min(running.values())
print(f"{n} jobs through Slurm in {t1 - t0:.1f} s (--poll {poll})")
print(f"queue -> sbatch accepted: median {statistics.median(submit):.2f} s, p95 {p95(submit):.2f} s")
print(f"submitted: {n / max(span, 1e-9):.1f} jobs/s ({n} sbatch calls in {span:.2f} s)")
print(f"job end -> registry 'done': median {statistics.median(finish):.2f} s, p95 {p95(finish):.2f} s")
PY
