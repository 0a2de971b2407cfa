#!/usr/bin/env bash
# `just fuzz TARGET SECONDS`: run a cargo fuzz target for a while. Installs cargo-fuzz and the
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
cd fuzz
exec cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
  -max_len=65536 -timeout=10 -rss_limit_mb=2048 -max_total_time="$seconds"
