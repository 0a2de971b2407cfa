#!/usr/bin/env bash
# The README's first command: turn the shipped sample capture into flows and show them.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
cargo build --release --locked -p weir-cli
weir="$CARGO_TARGET_DIR/release/weir"
mkdir -p data
"$weir" flows samples/loopback.pcapng -o data/loopback.flows.parquet
"$weir" flows samples/loopback.pcapng -f csv -o data/loopback.flows.csv -q
echo
echo "First flows (data/loopback.flows.csv; Parquet in data/loopback.flows.parquet):"
cut -d, -f2-6,11-14,17 data/loopback.flows.csv | head -12 | column -s, -t
