#!/usr/bin/env bash
# The web app's browser bundle: the weir-web crate built for wasm32 with its `hydrate`
# feature, then wasm-bindgen (the two steps cargo-leptos would run, without its downloads).
# Output: $CARGO_TARGET_DIR/site/pkg/weir-web.js + weir-web_bg.wasm (prints the site dir);
# `weir serve --site DIR` serves it, scripts/install.sh copies it to ~/.local/share/weir/site.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
tools=$(bash scripts/setup-web.sh)
site="$CARGO_TARGET_DIR/site"
cargo build ${CARGO_QUIET:-} --release --locked --target wasm32-unknown-unknown \
  -p weir-web --lib --no-default-features --features hydrate
mkdir -p "$site/pkg"
"$tools/wasm-bindgen" --target web --no-typescript --out-dir "$site/pkg" --out-name weir-web \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/weir_web.wasm"
echo "$site"
