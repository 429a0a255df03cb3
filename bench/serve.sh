#!/usr/bin/env bash
# ner-serve benchmark on loopback: wrk posting one CoNLL-like sentence per request (text/plain),
# 2 threads, 32 and then 256 connections, DURATION seconds each; then 32 connections posting
# different sentences in turn (SENTENCES, one per line; default the shipped example dev set), whose
# lengths and words vary as real traffic does; start-to-ready time; resident memory against the
# model's size on disk.
# Throughput is bounded by the model's forward pass; compare with
#   ner-infer --model DIR < sentences.txt   (sentences/s of the same model without HTTP).
#   MODEL=DIR     serve this model folder (default: train one on examples/data with the default
#                 sizes, EPOCHS=1 epoch, which takes a few minutes; speed does not depend on epochs)
#   DURATION=30   seconds per wrk run      PORT=18080    port to use
#   SENTENCES=FILE   raw sentences for the mixed run (default: examples/data/dev.txt as text)
#   SERVE_ARGS    extra ner-serve flags (e.g. "--max-batch-delay 1")
set -euo pipefail
source "$(dirname "$0")/lib.bash"
DURATION=${DURATION:-30}
PORT=${PORT:-18080}
command -v wrk > /dev/null || { echo "serve.sh: wrk is not installed (apt-get install wrk)" >&2; exit 69; }
work=$(mktemp -d /tmp/ner-bench-serve.XXXXXX)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2> /dev/null; wait 2> /dev/null; rm -rf "$work"; }
trap cleanup EXIT

bench_model
# The files a server maps: the checkpoint/ folder beside them is for resuming training only.
model_bytes=$(cat "$model/model.json" "$model/weights.bin" "$model/vocab.bin" | wc -c)

cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "Peter Blackburn of the European Commission said on Thursday that Germany would back the proposal ."
wrk.headers["Content-Type"] = "text/plain"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  ok, busy, busy_without_retry, other = 0, 0, 0, 0
end
function response(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 503 then
    busy = busy + 1
    if headers["Retry-After"] == nil and headers["retry-after"] == nil then busy_without_retry = busy_without_retry + 1 end
  else other = other + 1 end
end
function done(summary, latency, requests)
  local o, b, bn, x = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); b = b + t:get("busy"); bn = bn + t:get("busy_without_retry"); x = x + t:get("other")
  end
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f ok=%d s503=%d s503_no_retry_after=%d other_status=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    o, b, bn, x, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

# The same script posting SENTENCES' lines in turn (the first 1,000 of at least three tokens).
if [ -n "${SENTENCES:-}" ]; then cat "$SENTENCES"; else conll_raw "$ROOT/examples/data/dev.txt"; fi |
  python3 -c '
import json, sys
lines = [l.strip() for l in sys.stdin if len(l.split()) >= 3][:1000]
print("-- %d sentences" % len(lines))
print("local bodies = {" + ",".join(json.dumps(l, ensure_ascii=False) for l in lines) + "}")
print("local i = 0")
print("function request() i = i + 1; return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1]) end")
' > "$work/mixed.lua"
sed '/^wrk.body/d' "$work/post.lua" >> "$work/mixed.lua"

# Start to ready: from exec to the first 200 from /readyz.
t0=$(date +%s%N)
"$BIN/ner-serve" --model "$model" --port "$PORT" --poll-interval 0 ${SERVE_ARGS:-} 2> "$work/serve.log" &
server=$!
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz" 2> /dev/null)" = 200 ]; do
  kill -0 "$server" 2> /dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.002
done
t1=$(date +%s%N)
echo "start to ready: $(( (t1 - t0) / 1000000 )) ms (measured from outside, curl polling); server says: $(grep -o 'ready in [0-9]* ms' "$work/serve.log")"
# A wrk run's RESULT line; without one (a script error, say), wrk's output and a failure.
result() { grep -m1 '^RESULT' "$1" | cut -d' ' -f2- | grep . || { echo "serve.sh: wrk gave no result:" >&2; cat "$1" >&2; exit 1; }; }
rss() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$server/status"; }
echo "RSS after start: $(( $(rss) / 1048576 )) MiB; model on disk: $(( model_bytes / 1048576 )) MiB ($model_bytes bytes)"

for connections in 32 256; do
  wrk -t2 -c"$connections" -d"${DURATION}s" --latency -s "$work/post.lua" "http://127.0.0.1:$PORT/ner" > "$work/wrk-$connections.txt"
  r=$(result "$work/wrk-$connections.txt")
  echo "wrk 2 threads, $connections connections, ${DURATION} s: $r"
done
wrk -t2 -c32 -d"${DURATION}s" --latency -s "$work/mixed.lua" "http://127.0.0.1:$PORT/ner" > "$work/wrk-mixed.txt"
r=$(result "$work/wrk-mixed.txt")
echo "wrk 2 threads, 32 connections, ${DURATION} s, $(sed -n '1s/-- //p' "$work/mixed.lua") in turn: $r"
# The HTTP layer's own ceiling, no model involved: the same wrk load on GET /healthz.
wrk -t2 -c32 -d"$(( DURATION < 10 ? DURATION : 10 ))s" --latency "http://127.0.0.1:$PORT/healthz" > "$work/wrk-healthz.txt"
echo "GET /healthz (no model), 32 connections: $(awk '/Requests\/sec/ {print $2}' "$work/wrk-healthz.txt") req/s, p99 $(awk '$1 == "99%" {print $2}' "$work/wrk-healthz.txt")"
peak=$(awk '/VmHWM/ {print $2 * 1024}' "/proc/$server/status")
echo "RSS after load: $(( $(rss) / 1048576 )) MiB (peak $(( peak / 1048576 )) MiB); model on disk: $(( model_bytes / 1048576 )) MiB"
echo "access log lines: $(grep -c 'POST /ner' "$work/serve.log")"
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^ner_batch_size_(sum|count)' | tr '\n' ' '; echo
kill -TERM "$server"
wait "$server" && echo "SIGTERM: exit 0" || echo "SIGTERM: exit $?"
server=""
