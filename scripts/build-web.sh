#!/usr/bin/env bash
# The web app's browser bundle: the weir-web crate built for wasm32 with its `hydrate`
# feature, then wasm-bindgen (the two steps cargo-leptos would run, without its downloads;
# wasm-bindgen is the workspace's own `weir-web-bindgen`, see web/bindgen).
#   scripts/build-web.sh          both steps; prints the site dir
#   scripts/build-web.sh wasm     the wasm32 build alone
# Output: $CARGO_TARGET_DIR/site/pkg/weir-web.js + weir-web_bg.wasm; `weir serve --site DIR`
# serves it, scripts/install.sh copies it to ~/.local/share/weir/site.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
bash scripts/setup-web.sh
site="$CARGO_TARGET_DIR/site"
# The wasm build has a target directory of its own: it shares no artefact with the native
# build (another target; its host proc macros are built with another feature set anyway), and
# cargo locks a target directory for the length of a build, so it never waits on another
# build of the native tree.
wasm_dir="$CARGO_TARGET_DIR/wasm"
CARGO_TARGET_DIR="$wasm_dir" cargo build ${CARGO_QUIET:-} --release --locked \
  --target wasm32-unknown-unknown -p weir-web --lib --no-default-features --features hydrate
[ "${1:-}" = wasm ] && exit 0
# Nothing to do after scripts/build.sh's native build, which builds it too. `--workspace
# --bin`: features unified over the workspace as in every other build, so the dependencies it
# shares with the rest (rayon, serde...) are the same artefacts, not a second set.
source scripts/features.sh
cargo build ${CARGO_QUIET:-} --release --locked --workspace "${WEIR_FEATURES[@]}" --bin weir-web-bindgen
mkdir -p "$site/pkg"
"$CARGO_TARGET_DIR/release/weir-web-bindgen" \
  "$wasm_dir/wasm32-unknown-unknown/release/weir_web.wasm" "$site/pkg" weir-web
echo "$site"
