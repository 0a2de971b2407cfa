#!/usr/bin/env bash
# The test command of the README and of CI: formatting, lints, then every test.
# Needs only the Rust toolchain, python3 (pip), Node.js 20+ (npm) and ../shared beside the
# repository (WEIR_SHARED overrides). Fetches the ONNX Runtime library the classifier tests run against.
set -euo pipefail
cd "$(dirname "$0")/.."
# Build outside the clone so repeated runs (and CI on the same machine) reuse the artefacts.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
bash scripts/setup-ort.sh >/dev/null
cargo fmt --all --check
# The web app's browser bundle (wasm32 + wasm-bindgen) and, for the browser tests, Debian's
# chromium + chromium-driver: installed once, cached outside the clone.
export WEIR_SITE
WEIR_SITE="$(WEIR_BROWSER=1 bash scripts/build-web.sh)"
cargo clippy --release --locked --target wasm32-unknown-unknown -p weir-web --lib \
  --no-default-features --features hydrate -- -D warnings
# Everything in the release profile: the build of scripts/build.sh (and the README's first
# command) is the one the tests link against, and clippy shares its build scripts and macros.
# The LocalStack and browser tests are behind features (a plain `cargo test` needs no LocalStack).
# The browser tests too (weir-cli/tests/browser.rs: chromium through chromedriver).
features=(--features weir-functions/localstack-tests,weir-functions/lambda-zips-tests,weir-cli/browser-tests,weir-cli/live)
cargo clippy --release --workspace --all-targets --locked "${features[@]}" -- -D warnings
# The Lambda zips (cargo-lambda; tests/lambda_zips.rs opens them), then infra/: the template
# assertions, cdk-nag and `cdk synth` of each shape from those zips (npm ci once per lockfile).
bash scripts/lambda-zips.sh
bash scripts/infra.sh test
cargo test --release --workspace --locked "${features[@]}"
# A new user's first steps: a fresh clone and HOME, the README's first command, `weir` by name.
bash scripts/newcomer.sh
