#!/usr/bin/env bash
# The tools the web app's browser bundle and browser tests need, installed once and cached
# outside the clone (like the target directory), idempotent; prints the tools' bin directory.
#   - the wasm32-unknown-unknown target (rustup)
#   - wasm-bindgen-cli, exactly the wasm-bindgen version in Cargo.lock (the CLI refuses a
#     module built by another version), built from crates.io into ~/.cache/weir/tools
#     (~7 min once; `--locked` fails for 0.2.130: a pinned dependency left crates.io)
#   - with WEIR_BROWSER=1: Debian's chromium and chromium-driver (apt; root or sudo)
# No cargo-leptos: scripts/build-web.sh runs the two steps it would (cargo build for wasm32,
# wasm-bindgen), so nothing is downloaded from outside the package registries. Plain CSS: no
# sass. No wasm-opt (Debian's binaryen is too old for this wasm-bindgen's output).
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${WEIR_TOOLS:-$HOME/.cache/weir/tools}"
mkdir -p "$tools/bin"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "setup-web: rustup target add wasm32-unknown-unknown" >&2
  rustup target add wasm32-unknown-unknown >&2
fi

want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
[ -n "$want" ] || { echo "setup-web: no wasm-bindgen in Cargo.lock" >&2; exit 1; }
have=$("$tools/bin/wasm-bindgen" --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "setup-web: building wasm-bindgen-cli $want into $tools (once, ~7 min)" >&2
  cargo install -q wasm-bindgen-cli --version "=$want" --root "$tools" --force >&2
fi

if [ "${WEIR_BROWSER:-0}" = 1 ] && ! { command -v chromium && command -v chromedriver; } >/dev/null; then
  echo "setup-web: apt-get install chromium chromium-driver" >&2
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get install -y -q chromium chromium-driver >&2 || {
    $sudo_ apt-get update -q >&2 && $sudo_ apt-get install -y -q chromium chromium-driver >&2; }
fi
echo "$tools/bin"
