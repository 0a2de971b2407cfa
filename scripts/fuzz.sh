#!/usr/bin/env bash
# `just fuzz TARGET SECONDS`: run a cargo fuzz target (capture, packets, query) for a while. Installs cargo-fuzz and the
# nightly toolchain if missing; seeds the `capture` corpus with the small captures of
# ../shared/corpus (copied into fuzz/corpus, which git ignores). A crash leaves its input in
# fuzz/artifacts/TARGET/: turn it into a test next to the code it broke.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-capture}"
seconds="${2:-600}"
shared="${WEIR_SHARED:-$(cd .. && pwd)/shared}"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p "fuzz/corpus/$target"
if [ "$target" = capture ] && [ -z "$(ls -A fuzz/corpus/capture)" ]; then
  find "$shared/corpus/robustness" "$shared/corpus/realistic" -type f -size -64k | LC_ALL=C sort |
    while read -r f; do cp "$f" "fuzz/corpus/capture/$(sha1sum "$f" | cut -c1-16)"; done
fi
if [ "$target" = query ] && [ -z "$(ls -A fuzz/corpus/query)" ]; then
  # The documented queries (weir-search's query module) as seeds.
  i=0
  for q in 'src 10.0.0.0/8 and class "Port Scan" and anomaly > 5' \
    'ip 2001:db8::/32 and not dport 443' '(class DDoS or class '"'"'DoS Hulk'"'"') and p >= 0.9' \
    'cid "1:LQU9qZlK+B5F3KDmev6m5PMibrg="' 'src:10.1.2.3 dport:22' '-class Normal' \
    'proto udp and port != 53' 'alert true or percentile >= 99' 'ip ::ffff:10.0.0.1' \
    'not not (port 1 or port 2) and model m1' 'ip 10.0.0.1 or ip 10.0.0.2 or ip 10.0.0.0/31'; do
    printf '%s' "$q" > "fuzz/corpus/query/seed$i"; i=$((i + 1))
  done
fi
cd fuzz
exec cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
  -max_len=65536 -timeout=10 -rss_limit_mb=2048 -max_total_time="$seconds"
