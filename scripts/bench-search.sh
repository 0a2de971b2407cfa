#!/usr/bin/env bash
# Search at scale (issue 16): WEIR_BENCH_ROWS (default 10,000,000) generated flow records in
# the search layout, kept under ~/.cache/weir/bench-search/ROWS, queried through the JSON API
# in process, then through `weir serve` over HTTP (first UI page and API) from that directory
# and from LocalStack S3 (WEIR_BENCH_S3=0 skips it); prints the first run and warm p50/p95
# per query against issue 16's targets.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
bash scripts/setup-ort.sh >/dev/null
# --workspace, as the other builds: the same features everywhere, so nothing is built twice.
source scripts/features.sh
cargo build -q --release --locked --workspace --bins --examples "${WEIR_FEATURES[@]}"
"$CARGO_TARGET_DIR/release/examples/bench_search"

# The same data through the real server: the first UI page (server-rendered HTML, what a
# browser gets before any script runs) and the API, from the local directory, then from
# LocalStack S3 (WEIR_BENCH_S3=0 skips it).
rows="${WEIR_BENCH_ROWS:-10000000}"
rows="${rows//_/}"
data="$HOME/.cache/weir/bench-search/$rows"
weir="$CARGO_TARGET_DIR/release/weir"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
log="$(mktemp)"
serve_pid=""
ls_dir="$HOME/.cache/weir/bench-search/localstack"
stop() {
  [ -z "$serve_pid" ] || { kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; serve_pid=""; }
}
cleanup() {
  stop
  WEIR_LOCALSTACK_DIR="$ls_dir" WEIR_LOCALSTACK_PORT=4599 WEIR_LOCALSTACK_PERSIST=0 \
    bash localstack/ctl.sh stop-localstack 2>/dev/null || true
}
trap cleanup EXIT
serve() { # ARGS...: start weir serve and wait until it answers
  "$weir" serve --addr "127.0.0.1:$port" "$@" >"$log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 300); do
    curl -sf "$base/api/captures" >/dev/null 2>&1 && return 0
    kill -0 "$serve_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.2
  done
  echo "weir serve did not answer in 60 s; its log:" >&2; cat "$log" >&2; exit 1
}
header() {
  printf '%-78s %8s %8s %8s %8s\n' "$1" "first ms" "p50" "p95" "p95/tgt"
}
api_paths=(
  "/api/search?q=ip%2010.{i}.3.4&limit=100"
  "/api/search?q=src%2010.0.0.0/12%20and%20class%20%22Port%20Scan%22&from=2024-01-{day}T00:00:00Z&to=2024-01-{day}T23:59:59Z&limit=100"
  "/api/search?sort=anomaly&desc=true&limit=100"
  "/api/search?offset=500{c}000&limit=100"
)
echo
echo "bench-search: $rows flow records through weir serve (HTTP, one process), local directory"
serve --data-dir "$data"
header "first UI page (HTML), target 300 ms"
python3 scripts/bench_http.py "$base" 300 UI "/search" "/search?q=ip+10.{i}.3.4" "/search?q=class+%22Port+Scan%22+and+dport+{i}" "/captures/bench-0{c}"
header "API, target 100 ms"
python3 scripts/bench_http.py "$base" 100 API "${api_paths[@]}"
stop
if [ "${WEIR_BENCH_S3:-1}" != 0 ]; then
  echo
  echo "bench-search: the same through weir serve --bucket on LocalStack S3 (its own stack: port 4599, $ls_dir)"
  export WEIR_LOCALSTACK_DIR="$ls_dir" WEIR_LOCALSTACK_PORT=4599 WEIR_LOCALSTACK_PERSIST=0 WEIR_BUCKET=weir-bench
  bash localstack/ctl.sh start-localstack
  eval "$(bash localstack/ctl.sh env)"
  vbin="$(bash localstack/install.sh)"
  "$vbin/aws" s3api create-bucket --bucket weir-bench >/dev/null 2>&1 || true
  t0=$SECONDS
  "$vbin/aws" s3 sync --quiet --exclude .complete "$data" s3://weir-bench/
  echo "uploaded $(find "$data" -name '*.parquet' | wc -l) parts to s3://weir-bench in $((SECONDS - t0)) s"
  serve --bucket weir-bench
  header "first UI page (HTML) from S3, target 300 ms"
  python3 scripts/bench_http.py "$base" 300 UI "/search" "/search?q=ip+10.{i}.3.4"
  header "API from S3, target 300 ms"
  python3 scripts/bench_http.py "$base" 300 API "${api_paths[@]}"
fi
