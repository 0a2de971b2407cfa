#!/usr/bin/env bash
# DuckDB (the PyPI package, in a virtual environment cached at ~/.cache/weir/duckdb-venv) on
# weir's results, to check they read as other tools read them.
#   scripts/duckdb.sh check DATA_DIR ID   the checks of scripts/duckdb_check.py (tests use it)
#   scripts/duckdb.sh python ARGS...      that Python with duckdb importable
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${WEIR_DUCKDB_VENV:-$HOME/.cache/weir/duckdb-venv}"
version=2.0.1
if ! "$venv/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$version')" 2>/dev/null; then
  echo "installing duckdb $version (PyPI) into $venv ..." >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "duckdb==$version" >&2
fi
case "${1:-}" in
  check) shift; exec "$venv/bin/python" "$here/duckdb_check.py" "$@" ;;
  python) shift; exec "$venv/bin/python" "$@" ;;
  *) echo "usage: $0 check DATA_DIR ID | python ARGS..." >&2; exit 2 ;;
esac
