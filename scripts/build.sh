#!/usr/bin/env bash
# The one build, in the release profile with the one feature set (scripts/features.sh):
#   scripts/build.sh              every binary of the workspace (`weir`, the functions,
#                                 weir-status, weir-lambda-local): what LocalStack
#                                 (`just localstack-up`), the tests and the benchmarks reuse
#   scripts/build.sh --bin weir   only those binaries (the README's first command needs
#                                 `weir` alone); the dependencies are the same artefacts, so a
#                                 later full build compiles just the binaries left
# and, either way, the web app's browser bundle (scripts/build-web.sh: wasm32 + the
# workspace's own wasm-bindgen), whose wasm32 build runs beside the native one.
# Fetches the ONNX Runtime library on first use. Artefacts go to $CARGO_TARGET_DIR (default
# ~/.cache/weir/target, outside the clone).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
source scripts/features.sh
bash scripts/setup-ort.sh >/dev/null
bash scripts/setup-web.sh
mkdir -p "$CARGO_TARGET_DIR"
wasm_log="$CARGO_TARGET_DIR/wasm-build.log"
CARGO_QUIET=-q bash scripts/build-web.sh wasm >"$wasm_log" 2>&1 &
wasm_pid=$!
trap 'pkill -TERM -P "$wasm_pid" 2>/dev/null; kill "$wasm_pid" 2>/dev/null || true' EXIT
only=()
[ $# -gt 0 ] && only=("$@" --bin weir-web-bindgen)
# --timings: $CARGO_TARGET_DIR/cargo-timings/ keeps where the time went (newcomer.sh prints it).
cargo build ${CARGO_QUIET:-} --release --locked --workspace "${WEIR_FEATURES[@]}" "${only[@]}" --timings
wait "$wasm_pid" || { cat "$wasm_log" >&2; echo "build: the browser bundle's wasm32 build failed (above)" >&2; exit 1; }
trap - EXIT
CARGO_QUIET=${CARGO_QUIET:-} bash scripts/build-web.sh >/dev/null
