#!/usr/bin/env bash
# A dependency chain: train -> evaluate -> promote. Each step starts only when the one before
# succeeded (afterok); if training or the evaluation fails, Slurm cancels the rest.
#
#   NER_HOME=/shared/ner ./chain.sh job.json news data/test.txt 0.85
set -euo pipefail
job=${1:?job.json}; name=${2:?model name}; test=${3:?CoNLL test file}; min_f1=${4:-0}
: "${NER_HOME:?set NER_HOME to the shared state folder}"
here=$(cd "$(dirname "$0")" && pwd)
common=(--export=ALL,NER_HOME="$NER_HOME",NER_REGISTRY_JOURNAL=delete)

train=$(sbatch --parsable "${common[@]}" "$here/train.sbatch" "$job")
# The evaluation fails (and so stops the chain) when the new model scores below min_f1.
evaluate=$(sbatch --parsable "${common[@]}" --dependency=afterok:"$train" --job-name=ner-eval \
  --cpus-per-task=4 --mem=4G --time=00:30:00 --output="ner-eval-%j.out" \
  --wrap "ner-infer --model '$name@latest' --format conll --eval --input '$test' | tee /dev/stderr \
          | jq -e '.f1 >= $min_f1' > /dev/null")
promote=$(sbatch --parsable "${common[@]}" --dependency=afterok:"$evaluate" --job-name=ner-promote \
  --cpus-per-task=1 --mem=512M --time=00:05:00 --output="ner-promote-%j.out" \
  --wrap "ner-register promote '$name@latest' --alias production")
echo "train $train -> evaluate $evaluate -> promote $promote"
