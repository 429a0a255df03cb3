#!/usr/bin/env python3
"""Scores ner-infer's tokenizer against the gold tokenization of a CoNLL file.

Each gold sentence becomes one line of text, twice: its tokens joined with single spaces, and
detokenized into raw text as a writer would type it (`Germany's`, `(Reuters)`, `"Yes," he said.`).
The lines go through `ner-infer --tokenize-only`; a gold token counts as matched when the tokenizer
returns a token with exactly its offsets (Unicode scalars, which is what Python string indices count). Then times the tokenizer on the same text
repeated, as ner-infer reports it on stderr.

usage: tokenizer_match.py CONLL_FILE NER_INFER [--show N]
"""
import collections
import json
import re
import subprocess
import sys
import tempfile


def sentences(path):
    sent = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.split()
            if not cols or cols[0] == "-DOCSTART-":
                if sent:
                    yield sent
                sent = []
                continue
            sent.append(cols[0])
    if sent:
        yield sent


NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "}", "%", "'", "'s", "'S", "n't", "N'T",
                   "'re", "'ve", "'ll", "'d", "'m", "'RE", "'VE", "'LL", "'D", "'M", "..."}
NO_SPACE_AFTER = {"(", "[", "{", "$"}


def detokenize(tokens):
    """Raw text as a writer would have typed it (Moses-style rules), with each token's offsets."""
    text, spans, quotes, glue = "", [], 0, True
    for tok in tokens:
        if tok == '"':
            opening = quotes % 2 == 0
            quotes += 1
            before = not glue and opening
        else:
            opening = False
            before = not glue and tok not in NO_SPACE_BEFORE
        if before:
            text += " "
        spans.append((len(text), len(text) + len(tok)))
        text += tok
        glue = tok in NO_SPACE_AFTER or (tok == '"' and opening)
    return text, spans


def score(binary, texts, gold_spans, show, label):
    run = subprocess.run([binary, "--tokenize-only", "--threads", "1"], input=("\n".join(texts) + "\n").encode(),
                         capture_output=True, check=True)
    out = [json.loads(l) for l in run.stdout.decode().splitlines()]
    assert len(out) == len(texts), f"{len(out)} output lines for {len(texts)} input lines"
    total = matched = breaks = 0
    misses = collections.Counter()
    for text, spans, rec in zip(texts, gold_spans, out):
        predicted = {(t["start"], t["end"]) for s in rec["sentences"] for t in s}
        breaks += max(0, len(rec["sentences"]) - 1)
        for a, b in spans:
            total += 1
            if (a, b) in predicted:
                matched += 1
            else:
                got = [text[x:y] for x, y in sorted(predicted) if x < b and y > a]
                misses[(text[a:b], " ".join(got))] += 1
    print(f"{label}: {matched}/{total} tokens = {100.0 * matched / total:.2f}% "
          f"({len(texts)} sentences, {breaks} extra sentence breaks inside them)")
    for (tok, got), n in misses.most_common(show):
        print(f"  {n:5d}  gold {tok!r}  got {got!r}")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, binary = sys.argv[1], sys.argv[2]
    show = int(sys.argv[sys.argv.index("--show") + 1]) if "--show" in sys.argv else 0
    gold = list(sentences(path))
    lines, spans = [], []
    for tokens in gold:
        pos, line_spans = 0, []
        for tok in tokens:
            line_spans.append((pos, pos + len(tok)))
            pos += len(tok) + 1
        lines.append(" ".join(tokens))
        spans.append(line_spans)
    score(binary, lines, spans, show, "token match, sentences joined with spaces")
    raw = [detokenize(tokens) for tokens in gold]
    score(binary, [t for t, _ in raw], [s for _, s in raw], show, "token match, detokenized raw text")
    text = "\n".join(lines) + "\n"

    # Speed: the dev text 20 times over, one thread, tokenizer time only (ner-infer's own measure). Per
    # CPU second is the figure to trust on a machine shared with other work.
    with tempfile.TemporaryFile() as big:
        big.write(text.encode() * 20)
        big.seek(0)
        run = subprocess.run([binary, "--tokenize-only", "--threads", "1"], stdin=big,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    m = re.search(r"tokenized (\d+) characters in ([\d.]+) s \(([\d.]+) M characters/s; ([\d.]+) M per CPU second",
                  run.stderr.decode())
    if not m:
        sys.exit("no speed line from ner-infer: " + run.stderr.decode())
    print(f"speed: {m.group(3)} M characters/s wall, {m.group(4)} M characters per CPU second, one thread "
          f"({m.group(1)} characters in {m.group(2)} s wall)")


if __name__ == "__main__":
    main()
