#!/usr/bin/env bash
# Install `just` (the task runner of the justfile) without touching the system Python: the
# rust-just wheel from PyPI in a virtual environment (~/.cache/weir/just-venv), linked into
# ~/.local/bin beside `weir`. Works with pyenv's python3 and with Debian's (whose
# `pip install` outside a venv fails with externally-managed-environment). ~10 s.
set -euo pipefail
version=1.59.0
venv="${WEIR_JUST_VENV:-$HOME/.cache/weir/just-venv}"
bin="${WEIR_PREFIX:-$HOME/.local}/bin"
if ! "$venv/bin/just" --version 2>/dev/null | grep -q " $version"; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "rust-just==$version"
fi
mkdir -p "$bin"
ln -sf "$venv/bin/just" "$bin/just"
echo "installed $bin/just ($("$bin/just" --version))" >&2
case ":$PATH:" in
  *":$bin:"*) ;;
  *) echo "note: $bin is not on your PATH: export PATH=\"$bin:\$PATH\"" >&2 ;;
esac
