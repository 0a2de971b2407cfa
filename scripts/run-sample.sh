#!/usr/bin/env bash
# The README's first command: analyze the shipped sample capture with the built-in model
# (flows -> classification -> Parquet results + summary) and show what was found.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
bash scripts/setup-ort.sh >/dev/null
cargo build --release --locked -p weir-cli
weir="$CARGO_TARGET_DIR/release/weir"
"$weir" analyze samples/loopback.pcapng --data-dir data
echo
echo "Results: data/captures/loopback.pcapng/flows.parquet (one row per flow: tuple, features, class,"
echo "class probabilities, anomaly score) and data/captures/loopback.pcapng/summary.json."
