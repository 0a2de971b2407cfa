#!/usr/bin/env bash
# `just bench-flows`: weir flows vs Suricata and tshark on the ~216 MB benchmark capture, in one
# run. Installs the peers if missing (Debian packages; Suricata from bookworm-backports), builds
# the capture with ../shared/bench/make-bench-pcap if missing, then prints wall time, MB/s,
# packets/s and peak RSS (GNU time) for each tool, and weir's ratio to each peer.
# Usage: scripts/bench-flows.sh [CAPTURE]   (RUNS=N to take the median of N runs, default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/peers.sh
bench_setup "$@"
bash scripts/build.sh
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
# Flow counts per protocol next to Suricata's (its eve.json flow records, same file).
mkdir -p "$tmp/eve"
suricata -r "$cap" --runmode single -l "$tmp/eve" -k none >/dev/null 2>&1
"$weir" flows -q --json "$cap" -o "$tmp/flows.parquet" > "$tmp/weir.json"
python3 - "$tmp/weir.json" "$tmp/eve/eve.json" <<'PY'
import collections, json, sys
w = json.load(open(sys.argv[1]))
s = collections.Counter()
for line in open(sys.argv[2]):
    e = json.loads(line)
    if e.get("event_type") == "flow":
        s[e["proto"]] += 1
# weir's protocol names -> Suricata's; Suricata makes flows for these protocols only.
names = {"TCP": "TCP", "UDP": "UDP", "ICMP": "ICMP", "ICMPv6": "IPv6-ICMP", "SCTP": "SCTP",
         "ESP": "ESP", "IPv6-in-IP": "IPv6", "GRE": "GRE"}
wp = collections.Counter({names.get(k, k): v for k, v in w["flows_by_proto"].items()})
print(f"\nweir: {w['flows']} flows, skipped {w['skipped']}, peak {w['peak_open_flows']} open flows")
print(f"{'protocol':<12} {'weir':>8} {'suricata':>9} {'diff':>8}")
def row(name, a, b):
    d = f"{100 * (a - b) / b:+.1f}%" if b else "-"
    print(f"{name:<12} {a:>8} {b:>9} {d:>8}")
for p in ["TCP", "UDP"]:
    row(p, wp[p], s[p])
other = [p for p in set(s) | {n for n in wp if n in names.values()} if p not in ("TCP", "UDP")]
row("other", sum(wp[p] for p in other), sum(s[p] for p in other))
for p in sorted(other, key=lambda p: -(wp[p] + s[p])):
    row("  " + p, wp[p], s[p])
extra = {p: n for p, n in wp.items() if p not in names.values()}
if extra:
    print("weir only (Suricata keeps no flows for these protocols):",
          ", ".join(f"{p} {n}" for p, n in sorted(extra.items(), key=lambda x: -x[1])))
PY
