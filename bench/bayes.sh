#!/usr/bin/env bash
# Bayesian search against random search, through the real ner-queue and ner-dispatch.
#  1. Branin's function as the metric (a --command stand-in maps learning_rate and dropout onto
#     its domain): 10 seeds × 20 trials, 2 in flight, for "bayes" and for "random" over the same
#     space; prints the median regret of the best trial of each (Branin's minimum is 0.397887).
#  2. A short real sweep on the shipped data (examples/bayes-sweep.json, fewer epochs): the best
#     trial's dev F1 and the wall time.
# SEEDS, TRIALS and REAL_TRIALS / REAL_EPOCHS make it shorter or longer.
set -euo pipefail
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/bin}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SEEDS=${SEEDS:-10}; TRIALS=${TRIALS:-20}
REAL_TRIALS=${REAL_TRIALS:-8}; REAL_EPOCHS=${REAL_EPOCHS:-6}
work=$(mktemp -d /tmp/ner-bench-bayes.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "EU I-ORG" > "$work/train.txt"

cat > "$work/branin.sh" <<'SH'
rec=$(cat)
lr=$(printf '%s' "$rec" | grep -o '"learning_rate":[0-9.eE+-]*' | head -1 | cut -d: -f2)
dr=$(printf '%s' "$rec" | grep -o '"dropout":[0-9.eE+-]*' | head -1 | cut -d: -f2)
awk -v lr="$lr" -v dr="$dr" 'BEGIN {
    pi = atan2(0, -1)
    x1 = -5 + 15 * (log(lr) / log(10) + 5) / 4; x2 = 15 * dr / 0.9
    a = x2 - 5.1 / (4 * pi * pi) * x1 * x1 + 5 / pi * x1 - 6
    printf "{\"metrics\":{\"dev\":{\"f1\":%.6f}}}\n", -(a * a + 10 * (1 - 1 / (8 * pi)) * cos(x1) + 10)
}'
SH

best_regret() {  # home: minus the best score, less Branin's minimum
  python3 - "$1" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1] + "/registry.sqlite")
scores = [json.loads(r)["metrics"]["dev"]["f1"] for (r,) in db.execute("SELECT record FROM jobs WHERE status = 'done'")]
print(f"{-max(scores) - 0.397887:.4f}")
PY
}

for method in bayes random; do
  regrets=()
  t0=$(date +%s.%N)
  for seed in $(seq "$SEEDS"); do
    home="$work/$method-$seed"
    python3 - "$work" "$method" "$seed" "$TRIALS" > "$work/sweep.json" <<'PY'
import json, sys
work, method, seed, trials = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
space = {"learning_rate": {"log_uniform": [0.00001, 0.1]}, "dropout": {"uniform": [0, 0.9]}}
sweep = {"name": "branin", "method": method, "trials": trials, "seed": seed,
         "base": {"train": work + "/train.txt"}, ("space" if method == "bayes" else "random"): space}
if method == "bayes":
    sweep["parallel"] = 2
print(json.dumps(sweep))
PY
    "$BIN/ner-queue" --home "$home" --quiet --sweep "$work/sweep.json" > /dev/null
    "$BIN/ner-dispatch" --home "$home" --quiet --drain --max-running 2 --poll 0.02 --command "bash $work/branin.sh" > /dev/null
    regrets+=("$(best_regret "$home")")
  done
  t1=$(date +%s.%N)
  python3 - "$method" "$t0" "$t1" "${regrets[@]}" <<'PY'
import statistics, sys
method, t0, t1, r = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), [float(x) for x in sys.argv[4:]]
print(f"{method:6s}: median regret {statistics.median(r):.4f} over {len(r)} seeds "
      f"(min {min(r):.4f}, max {max(r):.4f}); {t1 - t0:.0f} s")
PY
done

echo "== a real sweep: $REAL_TRIALS trials of $REAL_EPOCHS epochs on examples/data, 2 in flight"
home="$work/real"
sed -e "s/\"trials\": 12/\"trials\": $REAL_TRIALS/" -e "s/\"epochs\": 15/\"epochs\": $REAL_EPOCHS/" \
  "$ROOT/examples/bayes-sweep.json" > "$ROOT/examples/.bench-bayes-sweep.json"
trap 'rm -rf "$work" "$ROOT/examples/.bench-bayes-sweep.json"' EXIT
t0=$(date +%s)
sweep=$("$BIN/ner-queue" --home "$home" --quiet --sweep "$ROOT/examples/.bench-bayes-sweep.json" | head -1 \
  | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["sweep_id"])')
"$BIN/ner-dispatch" --home "$home" --quiet --drain --max-running 2 > /dev/null
t1=$(date +%s)
"$BIN/ner-register" --home "$home" best --sweep "$sweep" --by dev.f1 --summary
echo "wall time $((t1 - t0)) s"
