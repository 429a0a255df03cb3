# Helpers sourced by the bench scripts (not a benchmark itself: `make bench` runs bench/*.sh).

# The repository, and the tools to measure (BIN, else the repository's bin/).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$ROOT/bin}

# A training run's history: one line per epoch, then the best dev F1, the training time, the median
# epoch and the time to the best epoch.
history_summary() {  # model folder
    python3 - "$1" <<'PY'
import json, sys
d = sys.argv[1]
h = [json.loads(l) for l in open(d + "/history.ndjson")]
m = json.load(open(d + "/metrics.json"))
for e in h:
    print(f"  epoch {e['epoch']:2d}  loss {e['loss']:.4f}  dev F1 {100*e['dev_f1']:.2f}  {e['seconds']:.2f}s")
secs = [e["seconds"] for e in h]
best = m["best_epoch"]
print(f"  best dev F1 {100*m['dev']['f1']:.2f} at epoch {best} of {m['epochs_run']}; "
      f"{m['train_seconds']:.0f}s training, {m['tokens_per_second']:.0f} tokens/s; "
      f"median epoch {sorted(secs)[len(secs)//2]:.2f}s, {sum(secs[:best]):.1f}s to the best epoch")
PY
}

# Raw text from a CoNLL file: each sentence's tokens joined by spaces, one sentence per line.
conll_raw() {  # conll file
    awk 'NF==0{if(l!="")print l; l=""; next} $1=="-DOCSTART-"{next} {l=l (l==""?"":" ") $1} END{if(l!="")print l}' "$1"
}

# $MODEL, or a model with the default sizes trained on examples/data for EPOCHS (default 1)
# epoch(s) into $work/model: what the serve benchmarks run against (speed does not depend on
# epochs). Sets `model`; needs BIN, ROOT and work.
bench_model() {
    model=${MODEL:-}
    [ -n "$model" ] && return
    model="$work/model"
    echo "training a model with the default sizes on examples/data (${EPOCHS:-1} epoch(s))..."
    local t0; t0=$(date +%s)
    echo "{\"name\": \"bench\", \"spec\": {\"train\": \"$ROOT/examples/data/train.txt\", \"epochs\": ${EPOCHS:-1}}}" |
        "$BIN/ner-train" --output "$model" --home "$work/home" --quiet > /dev/null
    echo "trained in $(( $(date +%s) - t0 )) s"
}
