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
echo "Results under data/captures/loopback-5b00ecbc/: results/*.parquet (one row per flow: tuple,"
echo "features, class, class probabilities, anomaly score), summary.json, status.json, and"
echo "flows/day=*/ (the search layout: every flow, narrow, by day, sorted by time) - the layout the"
echo "pipeline writes to S3. \`weir status --data-dir data\` lists the captures there and their state."
