# Sourced by the scripts that build (build.sh, lambda-zips.sh, test.sh): the one feature set
# every build of the README's two commands uses, so each crate compiles once (cargo unifies
# features per invocation: a build with another set recompiles what they touch). The test
# features only switch on test files (LocalStack, the Lambda zips, the browser); `live` is
# `weir edge run --interface` (AF_PACKET).
# shellcheck disable=SC2034
WEIR_FEATURES=(--features weir-functions/localstack-tests,weir-functions/lambda-zips-tests,weir-cli/browser-tests,weir-cli/live)
