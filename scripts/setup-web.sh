#!/usr/bin/env bash
# What the web app's browser bundle and browser tests need beyond the workspace, idempotent:
#   - the wasm32-unknown-unknown target (rustup)
#   - with WEIR_BROWSER=1: Debian's chromium and chromium-driver (apt; root or sudo)
# wasm-bindgen itself is a workspace member (web/bindgen, `weir-web-bindgen`: the
# wasm-bindgen-cli-support library of Cargo.lock's version), built by the same release build
# as everything else, so there is no separate `cargo install wasm-bindgen-cli` (~7 min).
# No cargo-leptos: scripts/build-web.sh runs the two steps it would (cargo build for wasm32,
# wasm-bindgen), so nothing is downloaded from outside the package registries. Plain CSS: no
# sass. No wasm-opt (Debian's binaryen is too old for this wasm-bindgen's output).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "setup-web: rustup target add wasm32-unknown-unknown" >&2
  rustup target add wasm32-unknown-unknown >&2
fi

if [ "${WEIR_BROWSER:-0}" = 1 ] && ! { command -v chromium && command -v chromedriver; } >/dev/null; then
  echo "setup-web: apt-get install chromium chromium-driver" >&2
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get install -y -q chromium chromium-driver >&2 || {
    $sudo_ apt-get update -q >&2 && $sudo_ apt-get install -y -q chromium chromium-driver >&2; }
fi
