#!/usr/bin/env bash
# The CUDA backend's figures on a GPU node: the device check, CoNLL-2003 training (time per epoch
# and to the best dev F1; the CPU run of the same configuration is `bench/train-conll.sh glove`)
# and ner-infer's throughput on the GPU.
#
#   bench/gpu.sh build   where Swift is: static binaries (no Swift runtime needed) and the C
#                        libraries they load, into .build-gpu/, and all of it as .build-gpu/kit.tar.xz
#   bench/gpu.sh [run]   on the GPU node, from the repository root (with ../shared/data or $DATA)
#
# GPU nodes have the NVIDIA driver and the CUDA toolkit but often no Swift, OpenBLAS or libarchive;
# everything else the binaries need travels in .build-gpu/. Without a GPU, `run` says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.bash
GPU=.build-gpu
DATA=${DATA:-$(cd .. && pwd)/shared/data}
OUT=${OUT:-/tmp/ner-gpu-bench}

if [ "${1:-run}" = build ]; then
    mkdir -p "$GPU/bin" "$GPU/lib"
    for t in ner-train ner-infer; do
        swift build -c release --static-swift-stdlib --scratch-path .build-static --product "$t" >/dev/null
        cp .build-static/release/"$t" "$GPU/bin/"
    done
    # Shared libraries beyond the C and C++ runtimes (OpenBLAS and its Fortran runtime, ...). The
    # node's own libstdc++ is kept: the CUDA libraries load it too, and an older copy would shadow it.
    ldd "$GPU"/bin/* | awk '/=> \// {print $3}' | sort -u \
        | grep -vE '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' | xargs -r cp -L -t "$GPU/lib"
    # One compressed kit of stripped binaries and libraries (about 30 MB), to copy to the node.
    rm -rf "$GPU/kit" && mkdir -p "$GPU/kit" && cp -r "$GPU/bin" "$GPU/lib" "$GPU/kit/" && strip "$GPU"/kit/bin/*
    python3 -c 'import sys, tarfile; t = tarfile.open(sys.argv[1], "w:xz", preset=9); t.add(sys.argv[2], arcname="."); t.close()' \
        "$GPU/kit.tar.xz" "$GPU/kit"
    rm -rf "$GPU/kit"
    ls -l "$GPU/kit.tar.xz"
    exit 0
fi

# On the node: unpack the kit if only it was copied.
if [ ! -x "$GPU/bin/ner-train" ] && [ -f "$GPU/kit.tar.xz" ]; then
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$GPU/kit.tar.xz" "$GPU"
fi

export LD_LIBRARY_PATH=$PWD/$GPU/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
BIN=$GPU/bin
if [ ! -x "$BIN/ner-train" ]; then echo "gpu.sh: no $BIN/ner-train; run 'bench/gpu.sh build' where Swift is"; exit 0; fi
mkdir -p "$OUT"
status=0
"$BIN/ner-train" --check-device >"$OUT/check.ndjson" 2>&1 || status=$?
if [ "$status" = 69 ]; then echo "gpu.sh: skipped: $(tail -1 "$OUT/check.ndjson")"; exit 0; fi
if [ "$status" != 0 ]; then echo "gpu.sh: the device check failed:"; cat "$OUT/check.ndjson"; exit 1; fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "== device check"; cat "$OUT/check.ndjson"

echo "== training, GloVe 50d, seed 1, default settings, --device cuda"
rm -rf "$OUT/glove-cuda"
"$BIN/ner-train" --train "$DATA/conll2003/train.txt" --dev "$DATA/conll2003/dev.txt" \
    --embeddings "$DATA/glove/glove.6B.50d.txt.gz" --seed 1 --device cuda --output "$OUT/glove-cuda" \
    </dev/null >"$OUT/glove-cuda.record.json" 2>"$OUT/glove-cuda.log"
history_summary "$OUT/glove-cuda"

echo "== inference, --device cuda (tokenization included)"
conll_raw "$DATA/conll2003/dev.txt" > "$OUT/dev-raw.txt"
for i in $(seq 40); do cat "$OUT/dev-raw.txt"; done > "$OUT/dev-raw40.txt"
tokens=$(wc -w < "$OUT/dev-raw40.txt")
for threads in 4 8 16; do
    start=$(date +%s.%N)
    "$BIN/ner-infer" --model "$OUT/glove-cuda" --device cuda --threads "$threads" --input "$OUT/dev-raw40.txt" >"$OUT/infer.out"
    end=$(date +%s.%N)
    python3 -c "print(f'  {$threads:2d} threads: $tokens tokens in {$end-$start:.2f} s: {$tokens/($end-$start):,.0f} tokens/s')"
done
"$BIN/ner-infer" --model "$OUT/glove-cuda" --threads 16 --input "$OUT/dev-raw.txt" >"$OUT/infer-cpu.out"
head -n "$(wc -l < "$OUT/dev-raw.txt")" "$OUT/infer.out" | cmp -s - "$OUT/infer-cpu.out" \
    && echo "  GPU and CPU output identical on dev" || echo "  GPU and CPU output differ on dev (scores round differently?)"
