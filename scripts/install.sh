#!/usr/bin/env bash
# Put `weir` on PATH: copies the release binary (built by scripts/build.sh) to
# $WEIR_PREFIX/bin (default ~/.local/bin) and the ONNX Runtime library it loads to
# $WEIR_PREFIX/lib/weir/, where `weir` looks first (beside ../lib/weir of its own path), so it
# works from any directory and for any HOME, and the web app's browser bundle (scripts/build-web.sh)
# to ~/.local/share/weir/site, where `weir serve` looks. Says how to add the directory to PATH when it
# is not there. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
prefix="${WEIR_PREFIX:-$HOME/.local}"
ort="$(bash scripts/setup-ort.sh)"
bin="$CARGO_TARGET_DIR/release/weir"
[ -x "$bin" ] || { echo "error: $bin is not built: run bash scripts/build.sh first" >&2; exit 1; }
mkdir -p "$prefix/bin" "$prefix/lib/weir"
install -m 0755 "$bin" "$prefix/bin/weir.new" && mv -f "$prefix/bin/weir.new" "$prefix/bin/weir"
cmp -s "$ort" "$prefix/lib/weir/$(basename "$ort")" || install -m 0644 "$ort" "$prefix/lib/weir/"
site="$CARGO_TARGET_DIR/site"
if [ -f "$site/pkg/weir-web.js" ]; then
  share="${XDG_DATA_HOME:-$HOME/.local/share}/weir/site"
  rm -rf "$share.new" && mkdir -p "$share.new" && cp -r "$site/pkg" "$share.new/" \
    && rm -rf "$share" && mv "$share.new" "$share"
fi
echo "installed $prefix/bin/weir (ONNX Runtime in $prefix/lib/weir/)" >&2
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: $prefix/bin is not on your PATH; add it with:" >&2
     echo "  export PATH=\"$prefix/bin:\$PATH\"   # e.g. in ~/.bashrc (Debian's ~/.profile adds ~/.local/bin at the next login)" >&2 ;;
esac
