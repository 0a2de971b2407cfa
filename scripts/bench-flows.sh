#!/usr/bin/env bash
# `just bench-flows`: weir flows vs Suricata and tshark on the ~216 MB benchmark capture, in one
# run. Installs the peers if missing (Debian packages; Suricata from bookworm-backports), builds
# the capture with ../shared/bench/make-bench-pcap if missing, then prints wall time, MB/s,
# packets/s and peak RSS (GNU time) for each tool, and weir's ratio to each peer.
# Usage: scripts/bench-flows.sh [CAPTURE]   (RUNS=N to take the median of N runs, default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
shared="${WEIR_SHARED:-$(cd .. && pwd)/shared}"
cap="${1:-$HOME/.cache/weir/bench.pcap}"
runs="${RUNS:-3}"

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -f /var/lib/apt/periodic/weir-updated ]; then apt-get update -qq; mkdir -p /var/lib/apt/periodic; touch /var/lib/apt/periodic/weir-updated; fi
  apt-get install -y -qq "$@" >/dev/null
}
command -v /usr/bin/time >/dev/null || apt_install time
command -v tshark >/dev/null || apt_install tshark
command -v mergecap >/dev/null || apt_install wireshark-common
if ! command -v suricata >/dev/null; then
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/bookworm-backports.list
    rm -f /var/lib/apt/periodic/weir-updated
  fi
  apt_install -t bookworm-backports suricata
fi
if [ ! -s "$cap" ]; then
  echo "building the benchmark capture $cap (a few minutes) ..."
  mkdir -p "$(dirname "$cap")"
  bash "$shared/bench/make-bench-pcap" "$cap"
fi
cargo build --release --locked -p weir-cli
weir="$CARGO_TARGET_DIR/release/weir"
size=$(stat -c %s "$cap")
packets=$(capinfos -c -M "$cap" | awk '/Number of packets/ {print $NF}')
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# measure NAME CMD... -> prints "NAME wall_s rss_kb" (median wall of $runs runs, max RSS)
measure() {
  local name=$1; shift
  local walls=() rss=0
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" >/dev/null 2>"$tmp/err" || { echo "$name failed:"; cat "$tmp/err"; exit 1; }
    read -r w m < "$tmp/t"; walls+=("$w"); [ "$m" -gt "$rss" ] && rss=$m
  done
  local med; med=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$name $med $rss"
}

cat "$cap" > /dev/null # warm the page cache so every tool reads from memory
echo "capture: $cap ($size bytes, $packets packets), median of $runs runs, $(nproc) cores"
{
  measure weir "$weir" flows -q "$cap" -o "$tmp/flows.parquet"
  measure suricata suricata -r "$cap" --runmode single -l "$tmp" -k none
  measure tshark tshark -r "$cap" -q -z conv,tcp
} > "$tmp/results"
awk -v size="$size" -v pk="$packets" '
  { name[NR]=$1; wall[NR]=$2; rss[NR]=$3 }
  END {
    printf "%-10s %9s %10s %13s %12s %12s\n", "tool", "wall s", "MB/s", "packets/s", "peak RSS MB", "weir speedup"
    for (i = 1; i <= NR; i++) {
      w = wall[i] > 0 ? wall[i] : 0.001
      printf "%-10s %9.2f %10.0f %13.0f %12.0f %12s\n", name[i], wall[i], size / w / 1e6, pk / w, rss[i] / 1024, (i == 1 ? "-" : sprintf("%.1fx", w / (wall[1] > 0 ? wall[1] : 0.001)))
    }
  }' "$tmp/results"
"$weir" flows -q --json "$cap" -o "$tmp/flows.parquet" | python3 -c '
import json, sys
s = json.loads(sys.stdin.readline())
print(f"weir: {s[\"flows\"]} flows, skipped {s[\"skipped\"]}, peak {s[\"peak_open_flows\"]} open flows")'
