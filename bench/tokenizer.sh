#!/usr/bin/env bash
# Tokenizer benchmark: how many CoNLL-2003 dev tokens the tokenizer reproduces exactly from the
# sentences joined with single spaces, and how fast it runs (one thread, tokenizer time only).
#
#   bench/tokenizer.sh                  build ner-infer (release) and run
#   BIN=path/to/ner-infer bench/tokenizer.sh
#   CONLL=file bench/tokenizer.sh       another CoNLL file (default ../shared/data/conll2003/dev.txt)
#   bench/tokenizer.sh --show 20        also list the 20 most frequent mismatches
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
conll=${CONLL:-$root/../shared/data/conll2003/dev.txt}
if [ ! -f "$conll" ]; then
    echo "tokenizer.sh: $conll: no such file (set CONLL=...)" >&2
    exit 66
fi
if [ -z "${BIN:-}" ]; then
    scratch=${SCRATCH:-$root/.build}
    swift build -c release --package-path "$root" --scratch-path "$scratch" --product ner-infer >&2
    BIN=$(swift build -c release --package-path "$root" --scratch-path "$scratch" --show-bin-path)/ner-infer
fi
exec python3 "$root/bench/tokenizer_match.py" "$conll" "$BIN" "$@"
