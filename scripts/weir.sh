#!/usr/bin/env bash
# `weir` of this checkout, from the one release build (the workspace with the feature set of
# scripts/features.sh, as scripts/build.sh and the tests build it: nothing recompiles, where a
# `cargo run -p weir-cli` would unify features over weir-cli alone and rebuild tokio and what
# sits on it). What the justfile's recipes run; arguments go to weir. Run from the
# repository root (paths in the arguments are relative to where you are).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
source "$repo/scripts/features.sh"
bash "$repo/scripts/setup-ort.sh" >/dev/null
cargo build -q --release --locked --workspace --manifest-path "$repo/Cargo.toml" "${WEIR_FEATURES[@]}" --bin weir
exec "$CARGO_TARGET_DIR/release/weir" "$@"
