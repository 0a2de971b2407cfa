#!/usr/bin/env bash
# Search at scale (issue 16): WEIR_BENCH_ROWS (default 10,000,000) generated flow records in
# the search layout, kept under ~/.cache/weir/bench-search/ROWS, queried through the JSON API
# from a local directory; prints cold and warm p50/p95 per query against the target.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
bash scripts/setup-ort.sh >/dev/null
# --workspace, as the other builds: the same features everywhere, so nothing is built twice.
cargo build -q --release --locked --workspace --examples
"$CARGO_TARGET_DIR/release/examples/bench_search"
