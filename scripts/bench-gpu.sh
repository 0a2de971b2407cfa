#!/usr/bin/env bash
# Classification benchmark on CUDA. Needs an NVIDIA GPU with a CUDA 13 driver and the CUDA 13 /
# cuDNN 9 runtime libraries (for example those inside a PyTorch cu13x install: found below via
# python, or set CUDA_LIBS to a ':'-separated list of directories).
# The onnxruntime-gpu provider (284 MB) comes from PyPI via scripts/setup-ort.sh; on a machine
# without registry access, copy ~/.cache/weir/ort/1.31.1/gpu/ there first.
# Runs the prebuilt example if BENCH_BIN is set (a machine without cargo), else builds it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
if [ ! -s "${WEIR_ORT_DIR:-$HOME/.cache/weir/ort/1.31.1}/gpu/libonnxruntime_providers_cuda.so" ]; then
  WEIR_ORT_GPU=1 bash scripts/setup-ort.sh >/dev/null
fi
if [ -z "${CUDA_LIBS:-}" ]; then
  CUDA_LIBS=$(python3 - <<'PY' 2>/dev/null || true
import glob, os, site
dirs = set()
for sp in site.getsitepackages() + [site.getusersitepackages()]:
    for lib in glob.glob(os.path.join(sp, "nvidia", "**", "lib", "*.so*"), recursive=True):
        dirs.add(os.path.dirname(lib))
    for lib in glob.glob(os.path.join(sp, "torch", "lib", "*.so*")):
        dirs.add(os.path.dirname(lib))
print(":".join(sorted(dirs)))
PY
)
fi
export LD_LIBRARY_PATH="${CUDA_LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
bin="${BENCH_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --locked -p weir-classify --example bench_classify
  bin="$CARGO_TARGET_DIR/release/examples/bench_classify"
fi
"$bin" "${1:-models/weir-mlp.onnx}" --device cuda --seconds "${SECONDS_PER_POINT:-2}"
