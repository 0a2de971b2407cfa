#!/usr/bin/env bash
# infra/ (the AWS CDK app, TypeScript): its npm packages installed from the committed lockfile
# (npm ci, once per lockfile), compiled, then:
#
#   infra.sh test              template assertions and cdk-nag (node --test), then `cdk synth`
#                              of the three shapes (Lambda classifier, GPU service, LocalStack)
#   infra.sh synth [ARGS]      cdk synth (offline: no notices, no telemetry); ARGS go to cdk
#                              (-c weir:KEY=VALUE settings, -o DIR)
#   infra.sh deploy [ARGS]     cdk deploy to the account of your AWS credentials
#   infra.sh destroy [ARGS]    cdk destroy (the capture bucket and its data are kept)
#   infra.sh cdk ARGS          any cdk command
#
# The function zips must be built first (scripts/lambda-zips.sh); -c weir:artifacts=DIR
# points elsewhere. Settings: docs/DEPLOY.md.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo/infra"
export CDK_DISABLE_CLI_TELEMETRY=true NPM_CONFIG_UPDATE_NOTIFIER=false
command -v npm >/dev/null || { echo "infra.sh: npm is not installed (Node.js 20 or newer is needed)" >&2; exit 1; }
if ! cmp -s package-lock.json node_modules/.weir-lockfile 2>/dev/null; then
  echo "infra.sh: installing the CDK packages (npm ci, from infra/package-lock.json)..." >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  cp package-lock.json node_modules/.weir-lockfile
fi
npx tsc
cdk() { npx cdk "$@" --no-notices; }
case "${1:-}" in
  test)
    node --test build/test/
    zips="${WEIR_LAMBDA_ZIPS:-${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}/lambda-zips}"
    if [ ! -f "$zips/weir-classifier.zip" ]; then
      zips="$(mktemp -d)"; trap 'rm -rf "$zips"' EXIT
      for b in weir-splitter weir-classifier weir-aggregator weir-merge weir-web; do echo stand-in > "$zips/$b.zip"; done
      echo "infra.sh: no function zips (scripts/lambda-zips.sh): synthesizing with stand-ins" >&2
    fi
    for shape in "" "-c weir:gpu=true" "-c weir:target=localstack"; do
      out="$(mktemp -d)"
      # shellcheck disable=SC2086
      cdk synth --quiet -o "$out" -c weir:artifacts="$zips" $shape
      echo "cdk synth ${shape:-(Lambda classifier)}: $(python3 -c "import json,sys; t=json.load(open(sys.argv[1])); print(len(t['Resources']), 'resources,', len(t.get('Outputs', {})), 'outputs')" "$out/Weir.template.json"), cdk-nag AwsSolutions clean"
      rm -rf "$out"
    done ;;
  synth)
    shift
    cdk synth --quiet "$@"
    case " $* " in
      *" -o "*|*" --output "*) ;;
      *) python3 - "$repo/infra/cdk.out" "$repo" <<'PY'
import json, os, sys
out = sys.argv[1]
for name in sorted(os.listdir(out)):
    if name.endswith(".template.json"):
        t = json.load(open(os.path.join(out, name)))
        kinds = {}
        for r in t["Resources"].values():
            kinds[r["Type"]] = kinds.get(r["Type"], 0) + 1
        main = ", ".join(f"{n} {k.split('::')[-1]}" for k, n in sorted(kinds.items(), key=lambda x: -x[1])[:6])
        print(f"synthesized {os.path.relpath(os.path.join(out, name), sys.argv[2])}: {len(t['Resources'])} resources ({main}, ...); cdk-nag AwsSolutions: no finding left")
print("next, with AWS credentials: bash scripts/infra.sh cdk bootstrap (once per account and region), then just deploy (docs/DEPLOY.md)")
PY
      ;;
    esac ;;
  deploy) shift; cdk deploy "$@" ;;
  destroy) shift; cdk destroy "$@" ;;
  cdk) shift; cdk "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
