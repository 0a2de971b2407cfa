#!/usr/bin/env bash
# The test command of the README and of CI: formatting, lints, then every test.
# Needs only the Rust toolchain, python3 (pip), Node.js 20+ (npm) and ../shared beside the
# repository (WEIR_SHARED overrides). Fetches the ONNX Runtime library the classifier tests run against.
set -euo pipefail
cd "$(dirname "$0")/.."
# Build outside the clone so repeated runs (and CI on the same machine) reuse the artefacts.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
source scripts/features.sh
bash scripts/setup-ort.sh >/dev/null
cargo fmt --all --check
# Clippy runs inside the build, as the wrapper of the workspace's own crates (what `cargo
# clippy` does, but in build mode): the dependencies are the release build's, compiled once
# for the README's first command and for every step here, where `cargo clippy` would check
# all of them a second time. -D warnings: any lint or warning fails the build.
RUSTC_WORKSPACE_WRAPPER="$(dirname "$(rustup which cargo 2>/dev/null || command -v cargo)")/clippy-driver"
[ -x "$RUSTC_WORKSPACE_WRAPPER" ] || RUSTC_WORKSPACE_WRAPPER="$(command -v clippy-driver)"
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# The web app's browser bundle (wasm32, linted as it builds) and, for the browser tests,
# Debian's chromium + chromium-driver (installed once).
export WEIR_SITE
WEIR_SITE="$(WEIR_BROWSER=1 bash scripts/build-web.sh)"
# Every target of every crate (libraries, binaries, tests, examples, benches), linted, in the
# release profile with the one feature set (scripts/features.sh): the tests below and the
# zips reuse it. The LocalStack, Lambda-zip and browser tests are behind those features (a
# plain `cargo test` needs no LocalStack).
cargo build --release --workspace --all-targets --locked "${WEIR_FEATURES[@]}"
# The Lambda zips from that build (tests/lambda_zips.rs opens them), then infra/: the template
# assertions, cdk-nag and `cdk synth` of each shape from those zips (npm ci once per lockfile).
bash scripts/lambda-zips.sh
bash scripts/infra.sh test
cargo test --release --workspace --locked "${WEIR_FEATURES[@]}"
# A new user's first steps: a fresh clone and HOME, the README's first command, `weir` by name.
bash scripts/newcomer.sh
