#!/usr/bin/env bash
# Accuracy and speed of ner-train / ner-infer on CoNLL-2003 English (the figures docs/measurements.md gives).
#
#   bench/train-conll.sh [glove|novec|infer|all]    (default: all)
#
# Needs ../shared/data (or $DATA) holding conll2003/{train,dev}.txt and glove/glove.6B.50d.txt.gz.
# Results go to $OUT (default /tmp/ner-bench): per run, the trained record, history.ndjson (per-epoch
# loss, dev F1, seconds) and /usr/bin/time -v output (peak memory). Training uses default settings,
# seed 1, 2 threads. On a shared machine, read the timings with the load average printed beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.bash
DATA=${DATA:-$(cd .. && pwd)/shared/data}
OUT=${OUT:-/tmp/ner-bench}
THREADS=${THREADS:-2}
WHAT=${1:-all}
mkdir -p "$OUT"

swift build -c release --scratch-path .build-engine --product ner-train >/dev/null
swift build -c release --scratch-path .build-engine --product ner-infer >/dev/null
BIN=.build-engine/release

train() {  # name, extra flags...
    local name=$1; shift
    echo "== $name: load $(cut -d' ' -f1-3 /proc/loadavg)"
    rm -rf "$OUT/$name"
    /usr/bin/time -v -o "$OUT/$name.time" nice -n 5 "$BIN/ner-train" \
        --train "$DATA/conll2003/train.txt" --dev "$DATA/conll2003/dev.txt" \
        --seed 1 --threads "$THREADS" --output "$OUT/$name" "$@" </dev/null >"$OUT/$name.record.json" 2>"$OUT/$name.log"
    history_summary "$OUT/$name"
    grep -E "Maximum resident|Elapsed" "$OUT/$name.time" | sed 's/^\s*/  /'
}

infer() {
    local model=$OUT/glove
    [ -f "$model/model.json" ] || { echo "infer: train the glove model first"; return 1; }
    # Raw text: the dev set's tokens joined by spaces, one sentence per line, four times over.
    conll_raw "$DATA/conll2003/dev.txt" > "$OUT/dev-raw.txt"
    for i in 1 2 3 4; do cat "$OUT/dev-raw.txt"; done > "$OUT/dev-raw4.txt"
    local tokens; tokens=$(wc -w < "$OUT/dev-raw4.txt")
    echo "== inference: $tokens whitespace tokens, $THREADS threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
    /usr/bin/time -v -o "$OUT/infer.time" "$BIN/ner-infer" --model "$model" --threads "$THREADS" \
        --input "$OUT/dev-raw4.txt" >"$OUT/infer.out" 2>/dev/null
    local secs cpu; secs=$(grep Elapsed "$OUT/infer.time" | awk '{print $NF}' | awk -F: '{print $(NF-1)*60+$NF}')
    cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$OUT/infer.time")
    echo "  $secs s wall: $(python3 -c "print(round($tokens/$secs))") tokens/s (tokenization included)"
    echo "  $cpu s CPU: $(python3 -c "print(round($tokens/$cpu))") tokens per CPU second (what each core adds when it is free)"
    grep -E "Maximum resident" "$OUT/infer.time" | sed 's/^\s*/  /'
    head -1 "$OUT/dev-raw.txt" > "$OUT/one.txt"
    for i in 1 2 3; do
        /usr/bin/time -f "  load + first output: %e s, %M KB" "$BIN/ner-infer" --model "$model" --input "$OUT/one.txt" 2>&1 >/dev/null | grep load
    done
}

case $WHAT in
    glove) train glove --embeddings "$DATA/glove/glove.6B.50d.txt.gz" ;;
    novec) train novec ;;
    infer) infer ;;
    all) train glove --embeddings "$DATA/glove/glove.6B.50d.txt.gz"; train novec; infer ;;
    *) echo "usage: $0 [glove|novec|infer|all]" >&2; exit 64 ;;
esac
