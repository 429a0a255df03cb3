#!/usr/bin/env bash
# How much data does a model need? Dev F1 on CoNLL-2003 against the number of training sentences:
# fixed random subsets of the training set (the first N of one shuffle, so each subset holds the
# smaller ones), trained from scratch without vectors, from scratch with GloVe 6B 50d, and
# warm-started from a model trained on Wikigold (examples/data, with the shipped GloVe subset).
# Writes $OUT/learning-curve.csv (size, setting, seed, dev F1, best epoch, seconds), plots it to
# docs/learning-curve.png (matplotlib, installed into $OUT/venv when missing) and copies the CSV
# beside the plot.
#
#   bench/learning-curve.sh                     # every size, 3 seeds, all three settings
#   SIZES="250 1000 4000" SEEDS="1" bench/learning-curve.sh
#
# Small subsets get more epochs (at most 100; 30 from 4,000 sentences up), all with patience 10, so
# each run is trained to its best dev F1 rather than to a fixed budget.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin}
DATA=${DATA:-$(cd .. && pwd)/shared/data}
OUT=${OUT:-/tmp/ner-learning-curve}
SIZES=${SIZES:-250 500 1000 2000 4000 8000 14041}
SEEDS=${SEEDS:-1 2 3}
SETTINGS=${SETTINGS:-novec glove warm}
THREADS=${THREADS:-2}
PLOT=${PLOT:-docs/learning-curve.png}
GLOVE=${GLOVE:-$DATA/glove/glove.6B.50d.txt.gz}
[ -f "$DATA/conll2003/train.txt" ] || { echo "learning-curve: no $DATA/conll2003/train.txt (set DATA)"; exit 1; }
mkdir -p "$OUT"

# The subsets: sentences of the training set in one fixed shuffle; the first N of it.
python3 - "$DATA/conll2003/train.txt" "$OUT" $SIZES <<'PY'
import random, sys
path, out, sizes = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3:]]
sentences, cur = [], []
for line in open(path, encoding="utf-8"):
    if line.startswith("-DOCSTART-"):
        continue
    if line.strip():
        cur.append(line)
    elif cur:
        sentences.append(cur); cur = []
if cur:
    sentences.append(cur)
random.Random(0).shuffle(sentences)
for n in sizes:
    with open(f"{out}/train-{n}.txt", "w", encoding="utf-8") as f:
        for s in sentences[:n]:
            f.writelines(s); f.write("\n")
PY

# The parent of the warm starts: Wikigold with GloVe, as `make demo` trains it.
parent=$OUT/wikigold-parent
if [[ " $SETTINGS " == *" warm "* && ! -f "$parent/model.json" ]]; then
    echo "== parent: Wikigold + GloVe subset"
    "$BIN/ner-train" --train examples/data/train.txt --dev examples/data/dev.txt \
        --embeddings examples/data/glove.6B.50d.demo.txt.gz --learning-rate 0.004 --epochs 40 --patience 8 \
        --seed 7 --threads "$THREADS" --output "$parent" </dev/null >/dev/null 2>"$OUT/parent.log"
fi

csv=$OUT/learning-curve.csv
[ -f "$csv" ] || echo "sentences,setting,seed,dev_f1,best_epoch,train_seconds" > "$csv"
for n in $SIZES; do
    epochs=$(( n >= 4000 ? 30 : (120000 / n > 100 ? 100 : 120000 / n) ))
    epochs=$(( epochs < 30 ? 30 : epochs ))
    for setting in $SETTINGS; do
        for seed in $SEEDS; do
            grep -q "^$n,$setting,$seed," "$csv" && continue
            case $setting in
                novec) extra=(--embeddings none) ;;
                glove) extra=(--embeddings "$GLOVE") ;;
                warm) extra=(--init-from "$parent" --embeddings "$GLOVE") ;;
            esac
            dir=$OUT/$setting-$n-$seed
            rm -rf "$dir"
            echo "== $n sentences, $setting, seed $seed, $epochs epochs at most (load $(cut -d' ' -f1 /proc/loadavg))"
            "$BIN/ner-train" --train "$OUT/train-$n.txt" --dev "$DATA/conll2003/dev.txt" --seed "$seed" \
                --epochs "$epochs" --patience 10 --threads "$THREADS" --output "$dir" "${extra[@]}" \
                </dev/null >/dev/null 2>"$dir.log"
            python3 - "$dir/metrics.json" "$n" "$setting" "$seed" >> "$csv" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]},{sys.argv[3]},{sys.argv[4]},{m['dev']['f1']:.4f},{m['best_epoch']},{m['train_seconds']}")
PY
            tail -1 "$csv"
        done
    done
done

python3 -c "import matplotlib" 2>/dev/null || {
    [ -x "$OUT/venv/bin/python" ] || { python3 -m venv "$OUT/venv" && "$OUT/venv/bin/pip" -q install matplotlib; }
}
py=$(python3 -c "import matplotlib" 2>/dev/null && echo python3 || echo "$OUT/venv/bin/python")
"$py" - "$csv" "$PLOT" <<'PY'
import csv, statistics, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = list(csv.DictReader(open(sys.argv[1])))
labels = {"novec": "from scratch, no vectors", "glove": "from scratch, GloVe 6B 50d",
          "warm": "warm start from a Wikigold model, GloVe 6B 50d"}
fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
for setting, label in labels.items():
    sizes = sorted({int(r["sentences"]) for r in rows if r["setting"] == setting})
    if not sizes:
        continue
    f1 = [[100 * float(r["dev_f1"]) for r in rows if r["setting"] == setting and int(r["sentences"]) == n] for n in sizes]
    mean = [statistics.mean(v) for v in f1]
    sd = [statistics.stdev(v) if len(v) > 1 else 0 for v in f1]
    ax.errorbar(sizes, mean, yerr=sd, marker="o", capsize=3, label=label)
    for n, m in zip(sizes, mean):
        ax.annotate(f"{m:.1f}", (n, m), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
ax.set_xscale("log")
ticks = sorted({int(r["sentences"]) for r in rows})
ax.set_xticks(ticks, [f"{n:,}" for n in ticks])
ax.minorticks_off()
ax.set_xlabel("CoNLL-2003 training sentences")
ax.set_ylabel("dev F1")
seeds = sorted({r["seed"] for r in rows})
ax.set_title("How much data? CoNLL-2003 dev F1, " + (f"mean ± sd over seeds {', '.join(seeds)}" if len(seeds) > 1 else f"seed {seeds[0]}"), fontsize=10)
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
fig.savefig(sys.argv[2])
print(f"plot: {sys.argv[2]}")
PY
cp "$csv" "${PLOT%.png}.csv"
