#!/usr/bin/env bash
# The one build: `weir` and the function binaries (splitter, classifier, aggregator, worker,
# weir-status, weir-lambda-local) in the release profile, then the web app's browser bundle
# (scripts/build-web.sh: wasm32 + the workspace's own wasm-bindgen), the artefacts the tests
# (`cargo test --release`), LocalStack (`just localstack-up`) and the benchmarks reuse.
# Fetches the ONNX Runtime library on first use. Artefacts go to $CARGO_TARGET_DIR (default
# ~/.cache/weir/target, outside the clone).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
source scripts/features.sh
bash scripts/setup-ort.sh >/dev/null
# --timings: $CARGO_TARGET_DIR/cargo-timings/ keeps where the time went (newcomer.sh prints it).
cargo build ${CARGO_QUIET:-} --release --locked --workspace "${WEIR_FEATURES[@]}" --timings
CARGO_QUIET=${CARGO_QUIET:-} bash scripts/build-web.sh >/dev/null
