#!/usr/bin/env bash
# ner-serve with several models: how long a model's first request takes, which loads it, against its
# second. Three copies of one model folder are served with --max-models 2, so a request to the copy
# that is not loaded loads it (and unloads the other); each round asks the second and then the third
# copy twice. Prints curl's time_total for every request and the load times the server logged.
#   MODEL=DIR   serve copies of this model folder (default: train one on examples/data with the
#               default sizes, EPOCHS=1 epoch, which takes a few minutes; the load does not depend
#               on epochs)
#   ROUNDS=10   PORT=18081
set -euo pipefail
source "$(dirname "$0")/lib.bash"
ROUNDS=${ROUNDS:-10}
PORT=${PORT:-18081}
work=$(mktemp -d /tmp/ner-bench-serve-models.XXXXXX)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2> /dev/null; wait 2> /dev/null; rm -rf "$work"; }
trap cleanup EXIT

bench_model
for copy in a b c; do
  mkdir "$work/$copy"
  cp "$model/model.json" "$model/weights.bin" "$model/vocab.bin" "$work/$copy/"
done
echo "model: $(du -sh "$work/a" | cut -f1) on disk"

"$BIN/ner-serve" --model "$work/a" --models "$work/b,$work/c" --max-models 2 --port "$PORT" \
  --poll-interval 0 --home "$work/home" 2> "$work/serve.log" &
server=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" > /dev/null; do sleep 0.05; done

ask() {  # model folder; prints time_total in ms
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$PORT/ner" \
    -H "Content-Type: application/json" \
    --data "{\"model\": \"$1\", \"text\": \"Peter Blackburn of the European Commission said on Thursday that Germany would back the proposal .\"}" |
    awk '$1 != 200 { print "serve-models.sh: HTTP " $1 > "/dev/stderr"; exit 1 } { printf "%.1f\n", $2 * 1000 }'
}
first=() second=()
for _ in $(seq "$ROUNDS"); do
  for copy in b c; do
    first+=("$(ask "$work/$copy")")
    second+=("$(ask "$work/$copy")")
  done
done
summary() { tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { printf "median %s ms, min %s, max %s (%d requests)\n", v[int((NR + 1) / 2)], v[1], v[NR], NR }'; }
echo "first request (loads the model): $(echo "${first[*]}" | summary)"
echo "second request:                  $(echo "${second[*]}" | summary)"
echo "load times logged: $(grep -o 'loaded model .* in [0-9]* ms' "$work/serve.log" | grep -o '[0-9]* ms$' | tr '\n' ' ')"
