#!/usr/bin/env bash
# Times ner-pack against the shell equivalent (tar + sha256sum) on a 50 MB model folder of
# normally distributed float32 weights, the kind of data ner-train writes.
#   BIN=.build/release bench/pack.sh        (default BIN: bin)
#   SIZE_MB=50 REPEAT=3                     (best of REPEAT runs is reported)
set -euo pipefail

BIN=${BIN:-bin}
SIZE_MB=${SIZE_MB:-50}
REPEAT=${REPEAT:-3}
PACK="$BIN/ner-pack"
[[ -x "$PACK" ]] || { echo "bench/pack.sh: $PACK not found; build it or set BIN" >&2; exit 66; }
command -v python3 >/dev/null || { echo "bench/pack.sh: python3 with numpy is needed" >&2; exit 69; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ner-bench-pack.XXXXXX")
trap 'rm -rf "$work"' EXIT
model="$work/model"
mkdir -p "$model"
python3 - "$model" "$SIZE_MB" <<'PY'
import json, sys
import numpy as np
folder, mb = sys.argv[1], int(sys.argv[2])
n = mb * 1024 * 1024 // 4
np.random.default_rng(0).standard_normal(n, dtype=np.float32).astype("<f4").tofile(folder + "/weights.bin")
json.dump({"format": "bench", "dtype": "float32", "count": n}, open(folder + "/model.json", "w"))
PY

# "WALL CPU" seconds of the fastest of REPEAT runs (CPU = user + sys, children included, which is
# the steadier figure on a shared machine); $1 is a setup step run before each.
best() {
    local setup=$1; shift
    local best_wall="" best_cpu="" out wall cpu
    for ((i = 0; i < REPEAT; i++)); do
        "$setup"
        out=$( { TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>&1; } 2>&1 )
        wall=$(awk '{ print $1 }' <<<"$out")
        cpu=$(awk '{ printf "%.3f", $2 + $3 }' <<<"$out")
        if [[ -z "$best_wall" ]] || awk -v t="$wall" -v b="$best_wall" 'BEGIN { exit !(t < b) }'; then best_wall=$wall; fi
        if [[ -z "$best_cpu" ]] || awk -v t="$cpu" -v b="$best_cpu" 'BEGIN { exit !(t < b) }'; then best_cpu=$cpu; fi
    done
    echo "$best_wall $best_cpu"
}

fresh() { rm -rf "$work/home" "$work"/out.*; }
run_pack() { "$PACK" "$model" --home "$work/home" --model-id "bench-1" --quiet; }
run_tar_zstd() { tar --zstd -cf "$work/out.tar.zst" -C "$model" . && (cd "$model" && sha256sum weights.bin model.json); }
run_tar_gzip() { tar -czf "$work/out.tar.gz" -C "$model" . && (cd "$model" && sha256sum weights.bin model.json); }

cat "$model"/* >/dev/null   # warm the page cache so every contender reads from memory
read -r w_pack c_pack < <(best fresh run_pack)
pack_bytes=$(stat -c %s "$work"/home/artifacts/bench-1.tar.*)
read -r w_zstd c_zstd < <(best fresh run_tar_zstd)
zstd_bytes=$(stat -c %s "$work/out.tar.zst")
read -r w_gzip c_gzip < <(best fresh run_tar_gzip)
gzip_bytes=$(stat -c %s "$work/out.tar.gz")

printf 'model folder: %s MB float32 (normal), best of %s runs, %s cores, load %s\n' \
    "$SIZE_MB" "$REPEAT" "$(nproc)" "$(cut -d' ' -f1 /proc/loadavg)"
printf '%-30s %8s %8s %12s\n' "" "wall s" "cpu s" "bytes"
printf '%-30s %8s %8s %12s\n' "ner-pack (zstd, sha, verify)" "$w_pack" "$c_pack" "$pack_bytes"
printf '%-30s %8s %8s %12s\n' "tar --zstd -cf + sha256sum" "$w_zstd" "$c_zstd" "$zstd_bytes"
printf '%-30s %8s %8s %12s\n' "tar -czf + sha256sum" "$w_gzip" "$c_gzip" "$gzip_bytes"
awk -v pw="$w_pack" -v pc="$c_pack" -v zw="$w_zstd" -v zc="$c_zstd" -v gw="$w_gzip" -v gc="$c_gzip" 'BEGIN {
    printf "ratio ner-pack / (tar --zstd + sha256sum): wall %.2f, cpu %.2f\n", pw / zw, pc / zc
    printf "ratio ner-pack / (tar -czf + sha256sum):   wall %.2f, cpu %.2f\n", pw / gw, pc / gc
}'
