#!/usr/bin/env bash
# The one build, in the release profile with the one feature set (scripts/features.sh):
#   scripts/build.sh              every binary of the workspace (`weir`, weir-status, the
#                                 functions, weir-lambda-local): what LocalStack
#                                 (`just localstack-up`), the tests and the benchmarks reuse
#   scripts/build.sh --bin weir   only those binaries (the README's first command needs
#                                 `weir` alone); the dependencies are the same artefacts, so a
#                                 later full build compiles just the binaries left
# then, either way, the web app's browser bundle (scripts/build-web.sh: wasm32 + the
# workspace's own wasm-bindgen). The wasm32 build runs after the native one: run beside it
# (tried on 2026-12-07, cold) the two took 34 s longer than one after the other, every unit
# slower for sharing the two cores.
# Fetches the ONNX Runtime library on first use. Artefacts go to $CARGO_TARGET_DIR (default
# ~/.cache/weir/target, outside the clone).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
source scripts/features.sh
bash scripts/setup-ort.sh >/dev/null
only=()
[ $# -gt 0 ] && only=("$@" --bin weir-web-bindgen)
# --timings: $CARGO_TARGET_DIR/cargo-timings/ keeps where the time went (newcomer.sh prints it).
cargo build ${CARGO_QUIET:-} --release --locked --workspace "${WEIR_FEATURES[@]}" "${only[@]}" --timings
CARGO_QUIET=${CARGO_QUIET:-} bash scripts/build-web.sh >/dev/null
