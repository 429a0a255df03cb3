#!/bin/sh
# Builds the demo's word vectors, examples/data/glove.6B.50d.demo.txt.gz, from GloVe 6B 50d: the
# vector of every word of the example data (train, dev, test, sentences.txt) that GloVe has, the
# word lower-cased as ner-train and ner-infer look words up, plus the TOP most frequent GloVe words;
# lines in GloVe's own order (most frequent first), values unchanged.
#
#   examples/tools/prune-vectors.sh [GLOVE]     (from any folder; TOP=25000 by default)
#   make -C examples vectors [GLOVE=PATH]
#
# GLOVE defaults to ../shared/data/glove/glove.6B.50d.txt.gz beside the repository (or $GLOVE).
# The demo itself reads only the committed output, not GloVe.
set -eu
here=$(pwd)
cd "$(dirname "$0")/.."
GLOVE=${1:-${GLOVE:-$(cd ../.. && pwd)/shared/data/glove/glove.6B.50d.txt.gz}}
case $GLOVE in /*) ;; *) GLOVE=$here/$GLOVE ;; esac
TOP=${TOP:-25000}
OUT=data/glove.6B.50d.demo.txt.gz
[ -f "$GLOVE" ] || { echo "prune-vectors: $GLOVE: no such file (give the GloVe 6B 50d file as an argument or in GLOVE)" >&2; exit 66; }

export LC_ALL=C  # byte order for sort and comm; perl decodes UTF-8 itself
words=$(mktemp)
trap 'rm -f "$words" "$OUT.tmp"' EXIT
# CoNLL files: the token column; sentences.txt: whitespace-separated words, also with the
# punctuation around them cut off (the tokenizer splits it off). perl lower-cases all of Unicode.
{
    awk 'NF >= 2 && $1 != "-DOCSTART-" { print $1 }' data/train.txt data/dev.txt data/test.txt
    tr -s ' \t' '\n\n' < sentences.txt | perl -CSD -ne 'chomp; print "$_\n"; s/^\W+|\W+$//g; print "$_\n"'
} | perl -CSD -ne 'print lc' | sort -u > "$words"

gzip -dc "$GLOVE" | perl -CSD -e '
    my $top = shift; my %want;
    open(my $w, "<:encoding(UTF-8)", shift) or die "prune-vectors: $!\n";
    while (<$w>) { chomp; $want{$_} = 1 }
    while (<STDIN>) { my ($word) = /^(\S+) /; print if $. <= $top || $want{$word} }
' "$TOP" "$words" | gzip -9n > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
kept=$(gzip -dc "$OUT" | wc -l)
found=$(gzip -dc "$OUT" | cut -d' ' -f1 | sort -u | comm -12 - "$words" | wc -l)
echo "prune-vectors: $OUT: $kept words ($found of the $(wc -l < "$words") example words), $(wc -c < "$OUT") bytes"
