#!/usr/bin/env bash
# Queue benchmark: enqueue 10,000 jobs with one ner-queue (JSON lines on stdin), then drain them
# with 1 and with 4 dispatchers running a trivial command; prints jobs/s for each step.
set -euo pipefail
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/bin}
N=${N:-10000}
work=$(mktemp -d /tmp/ner-bench-queue.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "EU I-ORG" > "$work/train.txt"
python3 - "$work" "$N" <<'PY'
import sys
work, n = sys.argv[1], int(sys.argv[2])
with open(f"{work}/requests.ndjson", "w") as f:
    for i in range(n):
        f.write('{"name":"bench","train":"%s/train.txt","seed":%d}\n' % (work, i))
PY
now() { date +%s.%N; }
rate() { python3 -c "import sys; n,a,b=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]); print(f'{n} jobs in {b-a:.2f} s = {n/(b-a):,.0f} jobs/s')" "$@"; }

for dispatchers in 1 4; do
  home="$work/home$dispatchers"
  t0=$(now)
  "$BIN/ner-queue" --home "$home" --quiet < "$work/requests.ndjson" > /dev/null
  t1=$(now)
  echo "enqueue ($dispatchers): $(rate "$N" "$t0" "$t1")"
  t0=$(now)
  for _ in $(seq "$dispatchers"); do
    "$BIN/ner-dispatch" --home "$home" --drain --max-running 32 --poll 0.005 --command 'exit 0' > /dev/null &
  done
  wait
  t1=$(now)
  done_jobs=$(ls "$home/spool/done" | wc -l)
  echo "claim+run+complete with $dispatchers dispatcher(s): $(rate "$done_jobs" "$t0" "$t1")"
  [ "$done_jobs" -eq "$N" ] || { echo "lost jobs: $done_jobs of $N done" >&2; exit 1; }
done
