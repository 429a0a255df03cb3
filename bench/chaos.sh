#!/usr/bin/env bash
# Chaos run of the queue: DISPATCHERS dispatchers (--drain) share one spool of JOBS jobs whose
# command sleeps a random 0-2 s and fails FAIL_PERCENT% of the time; every KILL_EVERY seconds a
# random dispatcher is killed with SIGKILL and started again, for DURATION seconds. Then the
# dispatchers finish the queue, a last `ner-dispatch --drain` takes over what the killed ones left,
# and the outcome is checked against what the job commands themselves logged:
#   - every job is done (recorded once, in spool/done and the registry) or dead-lettered with its
#     cause in spool/failed; none is lost (left queued or claimed, or missing);
#   - no job's command completed twice except after a failed attempt, and no attempt ran twice.
# MAX_RUNNING (the global cap) paces the run so that the kills go on for most of DURATION.
# Prints the counts; exits 1 when a job was lost or duplicated.
#   JOBS=1000 DURATION=600 DISPATCHERS=4 KILL_EVERY=3 FAIL_PERCENT=10 MAX_RUNNING=2
set -euo pipefail
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/bin}
JOBS=${JOBS:-1000}
DURATION=${DURATION:-600}
DISPATCHERS=${DISPATCHERS:-4}
KILL_EVERY=${KILL_EVERY:-3}
FAIL_PERCENT=${FAIL_PERCENT:-10}
MAX_RUNNING=${MAX_RUNNING:-2}
work=$(mktemp -d /tmp/ner-chaos.XXXXXX)
export NER_HOME=$work/home
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

printf 'EU I-ORG\n\n' > "$work/train.txt"
for i in $(seq "$JOBS"); do echo "{\"name\":\"chaos\",\"train\":\"$work/train.txt\"}"; done \
  | "$BIN/ner-queue" > "$work/queued.ndjson"

# Each command logs "JOB ATTEMPT ok|fail" as its last act, so the log says what completed.
command='cat > /dev/null; sleep "$(printf "%d.%03d" $((RANDOM % 2)) $((RANDOM % 1000)))"
if [ $((RANDOM % 100)) -lt '"$FAIL_PERCENT"' ]; then echo "$NER_JOB_ID $NER_ATTEMPT fail" >> '"$work"'/completed; exit 3; fi
echo "$NER_JOB_ID $NER_ATTEMPT ok" >> '"$work"'/completed'

start_dispatcher() {
  "$BIN/ner-dispatch" --drain --max-running "$MAX_RUNNING" --poll 0.05 --command "$command" \
    >> "$work/events.ndjson" 2>> "$work/dispatch.log" &
  pids[$1]=$!
}
for i in $(seq 0 $((DISPATCHERS - 1))); do start_dispatcher "$i"; done

kills=0
t0=$(date +%s)
while [ $(( $(date +%s) - t0 )) -lt "$DURATION" ]; do
  sleep "$KILL_EVERY"
  remaining=$(ls "$NER_HOME/spool/new" "$NER_HOME/spool/cur" 2> /dev/null | grep -c '\.json' || true)
  [ "$remaining" -eq 0 ] && break
  i=$((RANDOM % DISPATCHERS))
  kill -9 "${pids[$i]}" 2> /dev/null && kills=$((kills + 1)) || true
  wait "${pids[$i]}" 2> /dev/null || true
  start_dispatcher "$i"
done
elapsed=$(( $(date +%s) - t0 ))
for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
pids=()
"$BIN/ner-dispatch" --drain --max-running "$MAX_RUNNING" --poll 0.05 --command "$command" \
  >> "$work/events.ndjson" 2>> "$work/dispatch.log" || true

# The verdict, from the spool, the registry and the commands' own log.
ids=$(grep -o '"job_id":"[^"]*"' "$work/queued.ndjson" | cut -d'"' -f4 | sort)
done_ids=$(ls "$NER_HOME/spool/done" | sed 's/^[0-9]*-[0-9]*-//; s/\.json$//' | sort)
failed_ids=$(ls "$NER_HOME/spool/failed" | sed 's/^[0-9]*-[0-9]*-//; s/\.json$//' | sort)
n_done=$(printf '%s\n' "$done_ids" | grep -c . || true)
n_failed=$(printf '%s\n' "$failed_ids" | grep -c . || true)
lost=$(comm -23 <(printf '%s\n' "$ids") <(printf '%s\n%s\n' "$done_ids" "$failed_ids" | grep . | sort) | grep -c . || true)
both=$(comm -12 <(printf '%s\n' "$done_ids") <(printf '%s\n' "$failed_ids") | grep -c . || true)
# A job completed twice: two "ok" lines, or one attempt that completed twice.
dup_ok=$(awk '$3 == "ok" {n[$1]++} END {c = 0; for (j in n) if (n[j] > 1) c++; print c}' "$work/completed")
dup_attempt=$(awk '{n[$1 " " $2]++} END {c = 0; for (k in n) if (n[k] > 1) c++; print c}' "$work/completed")
failed_attempts=$(grep -c ' fail$' "$work/completed" || true)
# A done job whose command never completed ok, or a dead-lettered one without its cause.
no_ok=$(comm -23 <(printf '%s\n' "$done_ids" | grep .) <(awk '$3 == "ok" {print $1}' "$work/completed" | sort -u) | grep -c . || true)
no_cause=0
for f in "$NER_HOME"/spool/failed/*; do
  [ -e "$f" ] || continue
  grep -q '"error":"[^"]' "$f" || no_cause=$((no_cause + 1))
done
registry_done=$("$BIN/ner-register" jobs --status done | grep -c . || true)

duplicated=$((dup_ok + dup_attempt + both))
echo "chaos: $JOBS jobs, $DISPATCHERS dispatchers, $kills SIGKILLs in ${elapsed} s, $failed_attempts failed attempts"
echo "chaos: done $n_done (registry: $registry_done), dead-lettered $n_failed, lost $lost, duplicated $duplicated"
status=0
[ "$lost" -eq 0 ] || { echo "chaos: FAIL: $lost job(s) lost" >&2; status=1; }
[ "$duplicated" -eq 0 ] || { echo "chaos: FAIL: $dup_ok job(s) completed twice, $dup_attempt attempt(s) ran twice, $both job(s) both done and dead-lettered" >&2; status=1; }
[ "$no_ok" -eq 0 ] || { echo "chaos: FAIL: $no_ok job(s) recorded done without a successful run" >&2; status=1; }
[ "$no_cause" -eq 0 ] || { echo "chaos: FAIL: $no_cause dead-lettered job(s) without a cause" >&2; status=1; }
[ "$registry_done" -eq "$n_done" ] || { echo "chaos: FAIL: the registry shows $registry_done jobs done, the spool $n_done" >&2; status=1; }
exit $status
