#!/usr/bin/env bash
# Install LocalStack (S3 + SQS) as a host process, no Docker: localstack-core in its own
# virtual environment, pinned by constraints.txt (a set measured to work on Python 3.11; the
# unpinned set from today's PyPI does not start). Also gives the `aws` CLI (awscli) in the
# same environment. Idempotent: does nothing when the pinned version is already there.
# Prints the venv's bin directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${WEIR_LOCALSTACK_VENV:-$HOME/.cache/weir/localstack-venv}"
want="localstack-core==4.13.1"
stamp="$venv/.weir-installed"
if [ -x "$venv/bin/python" ] && [ -x "$venv/bin/aws" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$venv/bin"
  exit 0
fi
py="${WEIR_PYTHON:-python3}"
case "$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" in
  3.11|3.12) ;;
  *) for v in /root/.pyenv/versions/3.11*/bin/python3 "$(command -v python3.11 || true)"; do
       [ -x "$v" ] && py="$v" && break
     done ;;
esac
echo "installing LocalStack ($want) into $venv (about 2 minutes, ~500 MB)..." >&2
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check -c "$here/constraints.txt" \
  "localstack-core[runtime]==4.13.1" 'cbor2<6' 'pyopenssl==25.3.0' 'cryptography>=45.0.7,<47' \
  service_identity awscli >&2
echo "$want" > "$stamp"
echo "$venv/bin"
