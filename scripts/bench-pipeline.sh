#!/usr/bin/env bash
# `just bench-pipeline`: the whole pipeline on the ~216 MB benchmark capture, in one run:
#  1. `weir analyze` (flows + classification + Parquet + summary, in one process, both cores)
#     next to `suricata --runmode single` (no rules) on the same file: wall time, MB/s, ratio;
#  2. on LocalStack: upload with the AWS CLI -> status done, with the function binaries (the
#     release build of scripts/build.sh) under weir-lambda-local (starts and stops LocalStack
#     by PID).
# Usage: scripts/bench-pipeline.sh [CAPTURE]   (RUNS=N: median of N runs, default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/peers.sh
bench_setup "$@"
bash scripts/setup-ort.sh >/dev/null
bash scripts/build.sh
functions_dir="$CARGO_TARGET_DIR/release"
weir="$CARGO_TARGET_DIR/release/weir"
size=$(stat -c %s "$cap")
tmp=$(mktemp -d)
export WEIR_LOCALSTACK_DIR="$tmp/localstack"
cleanup() { bash localstack/ctl.sh down >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wall() { # CMD... -> wall seconds
  local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
  t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l
}
cat "$cap" > /dev/null
echo "capture: $cap ($size bytes), median of $runs runs, $(nproc) cores"
w=(); s=()
# A fresh data directory per run, removed at the end: deleting ~1,700 files and directories
# right before the next run makes ext4 slow to create the next ones (its inode allocator
# skips recently deleted inodes), which measures the file system, not weir.
for i in $(seq "$runs"); do
  w+=("$(wall "$weir" analyze -q --device cpu --data-dir "$tmp/data$i" "$cap")")
  rm -rf "$tmp/eve"; mkdir -p "$tmp/eve"
  s+=("$(wall suricata -r "$cap" --runmode single -l "$tmp/eve" -k none)")
done
wm=$(printf '%s\n' "${w[@]}" | median); sm=$(printf '%s\n' "${s[@]}" | median)
awk -v size="$size" -v w="$wm" -v s="$sm" 'BEGIN {
  printf "%-28s %8s %8s\n", "", "wall s", "MB/s"
  printf "%-28s %8.2f %8.0f\n", "weir analyze (end to end)", w, size / w / 1e6
  printf "%-28s %8.2f %8.0f\n", "suricata --runmode single", s, size / s / 1e6
  printf "weir analyze / suricata: %.2fx the speed (target: weir >= 300 MB/s)\n", s / w
}'

echo "LocalStack end to end (upload -> done; release function binaries):"
WEIR_FUNCTIONS_DIR="$functions_dir" bash localstack/ctl.sh up 2>/dev/null
eval "$(bash localstack/ctl.sh env)"
key="uploads/bench-$$.pcap"
t0=$(date +%s.%N)
aws s3 cp --quiet "$cap" "s3://weir/$key"
state=""; id=""
# Polled with plain HTTP GETs (LocalStack takes unsigned requests): an `aws` call costs ~0.5 s
# of Python start-up, which would blur the figure by as much.
s3="$AWS_ENDPOINT_URL/weir"
for _ in $(seq 3000); do
  # the capture id is the file stem + 8 hex digits of the key
  [ -n "$id" ] || id=$(curl -s "$s3?list-type=2&prefix=captures/&delimiter=/" | grep -o "captures/bench-$$-[0-9a-f]*" | head -1 | cut -d/ -f2 || true)
  [ -n "$id" ] && state=$(curl -s "$s3/captures/$id/status.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null || true)
  case "$state" in done|done-with-warnings|failed) break ;; esac
  sleep 0.1
done
t1=$(date +%s.%N)
flows=$(aws s3 cp --quiet "s3://weir/captures/$id/summary.json" - | python3 -c 'import json,sys; print(json.load(sys.stdin)["flows"])')
printf "upload -> %s in %.1f s (%s flows; target: under 10 s)\n" "$state" "$(echo "$t1 - $t0" | bc -l)" "$flows"
