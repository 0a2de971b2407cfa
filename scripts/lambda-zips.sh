#!/usr/bin/env bash
# The zips AWS Lambda runs (provided.al2023, x86_64), into $WEIR_LAMBDA_ZIPS (default
# $CARGO_TARGET_DIR/lambda-zips), what infra/ deploys:
#   weir-splitter.zip weir-aggregator.zip          bootstrap (the release binary)
#   weir-classifier.zip weir-merge.zip             bootstrap + libonnxruntime.so.1.31.1 beside it
#                                                  (weir loads the library next to its executable)
#   weir-web.zip                                   weir serve behind the Lambda Web Adapter:
#                                                  run.sh, weir, the browser bundle, ONNX Runtime
# and weir-worker for the GPU image (infra/gpu-worker/). Prints each zip's size and the newest
# glibc its binaries need (Amazon Linux 2023 has 2.34) and fails above that.
#
# The zips are made from the workspace's one release build (scripts/build.sh, the same
# features and profile as everything else): a Lambda `bootstrap` is the binary itself, built
# for the host (x86_64-unknown-linux-gnu) with the host's linker, so no second target tree
# (cargo-lambda's `--x86-64` built the whole workspace again under
# $CARGO_TARGET_DIR/x86_64-unknown-linux-gnu: ~20 minutes cold on two cores) and no
# cargo-lambda. The glibc check below is what makes the host build safe to ship. arm64
# (Graviton) is not built: it needs an aarch64 cross linker and the aarch64 ONNX Runtime
# wheel (see docs/DEPLOY.md).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
out="${WEIR_LAMBDA_ZIPS:-$CARGO_TARGET_DIR/lambda-zips}"
max_glibc=2.34
ort="$(bash scripts/setup-ort.sh)"

source scripts/features.sh
cargo build ${CARGO_QUIET:-} --release --locked --workspace "${WEIR_FEATURES[@]}" >&2
site="$(CARGO_QUIET=${CARGO_QUIET:-} bash scripts/build-web.sh)"

mkdir -p "$out"
python3 - "$CARGO_TARGET_DIR" "$out" "$ort" "$site" "$repo" "$max_glibc" <<'PY'
import os, re, shutil, stat, sys, zipfile
target, out, ort, site, repo, max_glibc = sys.argv[1:7]

def glibc(path):
    """The newest GLIBC_x.y symbol version an ELF file asks for (its .dynstr holds them)."""
    data = open(path, "rb").read()
    found = {tuple(map(int, m.group(1).split(b"."))) for m in re.finditer(rb"GLIBC_(2\.[0-9]+(?:\.[0-9]+)?)\x00", data)}
    return max(found) if found else (0,)

def add(z, path, name, mode=0o755):
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(path, "rb") as f:
        z.writestr(info, f.read())

limit = tuple(map(int, max_glibc.split(".")))
bad = []
lib = os.path.basename(ort)
zips = {}
for b in ["weir-splitter", "weir-classifier", "weir-aggregator", "weir-merge"]:
    exe = os.path.join(target, "release", b)
    dst = os.path.join(out, b + ".zip")
    with zipfile.ZipFile(dst + ".part", "w") as z:
        add(z, exe, "bootstrap")
        if b in ("weir-classifier", "weir-merge"):  # they run the model (the merge's gate and screen)
            add(z, ort, lib, 0o644)
    os.replace(dst + ".part", dst)
    zips[b] = [exe] + ([ort] if b in ("weir-classifier", "weir-merge") else [])

# The web app: weir serve --bucket behind the Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER runs run.sh).
run_sh = """#!/bin/sh
# weir's web app on Lambda: the Lambda Web Adapter (a layer) forwards HTTP to this server.
export HOME=/tmp
exec "$LAMBDA_TASK_ROOT/weir" serve --bucket "$WEIR_BUCKET" --addr "127.0.0.1:${AWS_LWA_PORT:-8080}" --site "$LAMBDA_TASK_ROOT/site"
"""
weir = os.path.join(target, "release", "weir")
dst = os.path.join(out, "weir-web.zip")
with zipfile.ZipFile(dst + ".part", "w") as z:
    info = zipfile.ZipInfo("run.sh", date_time=(2026, 1, 1, 0, 0, 0)); info.external_attr = (stat.S_IFREG | 0o755) << 16
    z.writestr(info, run_sh)
    add(z, weir, "weir")
    add(z, ort, lib, 0o644)
    for root, _, files in os.walk(site):
        for f in sorted(files):
            p = os.path.join(root, f)
            add(z, p, os.path.join("site", os.path.relpath(p, site)), 0o644)
os.replace(dst + ".part", dst)
zips["weir-web"] = [weir, ort]

worker = os.path.join(target, "release", "weir-worker")
shutil.copyfile(worker, os.path.join(repo, "infra", "gpu-worker", "weir-worker"))
os.chmod(os.path.join(repo, "infra", "gpu-worker", "weir-worker"), 0o755)

print(f"{'zip':<22} {'size':>9}  {'newest glibc needed':<20} (Amazon Linux 2023: {max_glibc})")
for name, files in list(zips.items()) + [("weir-worker (GPU image)", [worker])]:
    need = max(glibc(f) for f in files)
    size = os.path.getsize(os.path.join(out, name + ".zip")) if name in zips else os.path.getsize(worker)
    ok = need <= limit
    if not ok:
        bad.append(name)
    print(f"{name:<22} {size / 1e6:>7.1f} MB  GLIBC_{'.'.join(map(str, need)):<14} {'ok' if ok else 'TOO NEW'}")
print(f"in {out}")
if bad:
    sys.exit(f"lambda-zips.sh: {', '.join(bad)} need a newer glibc than Amazon Linux 2023's {max_glibc}")
PY
