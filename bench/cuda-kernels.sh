#!/usr/bin/env bash
# Compiles the CUDA backend's kernels with NVIDIA's own compilers, on any machine (no GPU needed):
# NVRTC, as ner-train loads it at run time, turns the source into PTX, and ptxas assembles that PTX
# for a real architecture (default sm_90, H100/H200), which catches what the tests' CPU stand-in
# cannot (CUDA-only syntax, register or stack problems).
#
#   bench/cuda-kernels.sh [ARCH...]     e.g. bench/cuda-kernels.sh 80 90
#
# The compilers come from PyPI's nvidia-cuda-nvrtc-cu12 and nvidia-cuda-nvcc-cu12 wheels, unpacked
# under .build-cuda/ (about 150 MB, fetched once).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=.build-cuda
ARCHS=${*:-90}
mkdir -p "$WORK/wheels"
for pkg in nvidia-cuda-nvrtc-cu12 nvidia-cuda-nvcc-cu12; do
    if ! ls "$WORK/wheels/${pkg//-/_}"-*.whl >/dev/null 2>&1; then
        python3 -m pip download --quiet --no-deps --dest "$WORK/wheels" "$pkg"
    fi
done
for whl in "$WORK"/wheels/*.whl; do
    [ -d "$WORK/unpacked/$(basename "$whl")" ] || python3 -m zipfile -e "$whl" "$WORK/unpacked/$(basename "$whl")"
done
NVRTC=$(find "$WORK/unpacked" -name 'libnvrtc.so.12' | head -1)
PTXAS=$(find "$WORK/unpacked" -path '*bin/ptxas' | head -1)
chmod +x "$PTXAS"

# The source is the raw string literal in CUDAKernels.swift.
python3 - Sources/NEREngine/CUDAKernels.swift "$WORK/ner_kernels.cu" <<'PY'
import sys
text = open(sys.argv[1]).read()
start = text.index('#"""\n') + 5
open(sys.argv[2], "w").write(text[start:text.index('"""#', start)])
PY

for arch in $ARCHS; do
    python3 - "$NVRTC" "$WORK/ner_kernels.cu" "$WORK/ner_kernels.$arch.ptx" "$arch" <<'PY'
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
src = open(sys.argv[2], "rb").read()
prog = ctypes.c_void_p()
assert lib.nvrtcCreateProgram(ctypes.byref(prog), src, b"ner_kernels.cu", 0, None, None) == 0
opts = [f"--gpu-architecture=compute_{sys.argv[4]}".encode(), b"--std=c++14"]
status = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
size = ctypes.c_size_t()
lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
log = ctypes.create_string_buffer(size.value)
lib.nvrtcGetProgramLog(prog, log)
if status != 0:
    sys.exit(f"NVRTC failed for compute_{sys.argv[4]}:\n{log.value.decode()}")
lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
ptx = ctypes.create_string_buffer(size.value)
lib.nvrtcGetPTX(prog, ptx)
open(sys.argv[3], "wb").write(ptx.value)
print(f"NVRTC compute_{sys.argv[4]}: {ptx.value.count(b'.entry')} kernels, {size.value} bytes of PTX")
PY
    "$PTXAS" --gpu-name "sm_$arch" -v "$WORK/ner_kernels.$arch.ptx" -o "$WORK/ner_kernels.$arch.cubin" 2>&1 \
        | awk '/Compiling entry/{k=$(NF-2)} /spill stores/{s=$0} /Used [0-9]+ registers/{print "  " k, $0 ";" s}' \
        | sed -e "s/ptxas info    : //" -e "s/  *[0-9]* bytes stack frame, / /" | sort -u
    echo "ptxas sm_$arch: ok"
done
