#!/usr/bin/env bash
# `just bench-abuse` (issue 29): weir serve under a heavy user, over 1,000,000 generated flow
# records (WEIR_BENCH_ROWS; the layout bench-search generates, kept under
# ~/.cache/weir/bench-search/ROWS): a 10,000-address IOC query's p95, 50 searches at once
# (p95, server RSS), every row exported (peak RSS over idle), a 1 GiB upload (peak RSS).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
bash scripts/setup-ort.sh >/dev/null
source scripts/features.sh
cargo build -q --release --locked --workspace --bins --examples "${WEIR_FEATURES[@]}"
export WEIR_BENCH_ROWS="${WEIR_BENCH_ROWS:-1000000}"
rows="${WEIR_BENCH_ROWS//_/}"
data="$HOME/.cache/weir/bench-search/$rows"
# Generates the rows once (and times its own queries, a side show here).
[ -e "$data/.complete" ] || "$CARGO_TARGET_DIR/release/examples/bench_search" >/dev/null
python3 scripts/bench_abuse.py "$CARGO_TARGET_DIR/release/weir" "$data"
