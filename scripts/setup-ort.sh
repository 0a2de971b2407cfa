#!/usr/bin/env bash
# Fetch the ONNX Runtime shared library that weir's classifier loads (ort, load-dynamic), from
# the PyPI wheel (the only registry reachable here), check its sha256 and print its path.
# Idempotent: a library already in place with the right hash is reused.
#   scripts/setup-ort.sh            CPU library  -> ~/.cache/weir/ort/1.31.1/libonnxruntime.so.1.31.1
#   WEIR_ORT_GPU=1 scripts/setup-ort.sh  also the CUDA provider from onnxruntime-gpu (284 MB)
# weir finds the library through WEIR_ORT_LIB, else this cache path.
set -euo pipefail
version=1.31.1
# sha256 of libonnxruntime.so.1.31.1 inside the onnxruntime 1.31.1 manylinux_2_28 x86_64
# wheels (identical in the cp311 and cp312 wheels).
cpu_sha=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3
dir="${WEIR_ORT_DIR:-$HOME/.cache/weir/ort/$version}"
lib="$dir/libonnxruntime.so.$version"
mkdir -p "$dir"

have() { [ -s "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

fetch() { # fetch PACKAGE MEMBER... : extract members of the wheel into $dir
  local pkg=$1; shift
  local tmp; tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    --python-version 3.12 "$pkg==$version" -d "$tmp" >&2
  python3 - "$tmp"/*.whl "$dir" "$@" <<'PY'
import sys, zipfile, os, shutil
whl, out, members = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(whl) as z:
    for m in members:
        src = "onnxruntime/capi/" + m
        with z.open(src) as r, open(os.path.join(out, m + ".part"), "wb") as w:
            shutil.copyfileobj(r, w)
        os.replace(os.path.join(out, m + ".part"), os.path.join(out, m))
PY
  rm -rf "$tmp"
}

if ! have "$lib" "$cpu_sha"; then
  echo "fetching ONNX Runtime $version (onnxruntime wheel from PyPI) ..." >&2
  fetch onnxruntime "libonnxruntime.so.$version"
  if ! have "$lib" "$cpu_sha"; then
    echo "error: $lib does not have the expected sha256 $cpu_sha; refusing to use it" >&2
    rm -f "$lib"
    exit 1
  fi
fi
if [ "${WEIR_ORT_GPU:-0}" = 1 ] && [ ! -s "$dir/gpu/libonnxruntime_providers_cuda.so" ]; then
  echo "fetching the CUDA provider (onnxruntime-gpu wheel, 256 MB) ..." >&2
  mkdir -p "$dir/gpu"
  dir="$dir/gpu" fetch onnxruntime-gpu "libonnxruntime.so.$version" libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so
fi
echo "$lib"
