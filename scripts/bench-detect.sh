#!/usr/bin/env bash
# `just bench-detect`: weir vs Suricata + the ET Open ruleset on the same labelled captures
# (../shared/labeled: attack and benign), in one run, with the same "detected" rule.
#   weir: leave-one-source-out (`weir eval`: each source's captures judged by a model trained
#         on the other sources, with the behaviour detectors); a capture is detected when it
#         has an alert of its labelled family.
#   Suricata 7 + ET Open (../shared/peers/et-open.rules.gz, installed from bookworm-backports
#         if missing): detected when it has a non-informational alert (peers/README.md's
#         rule; strict: severity 1-2).
# Benign: the share of flows with an alert (weir: its flows; Suricata: its eve flow records).
# Takes ~25 min on 2 cores (28 models are trained). EPOCHS=N trains shorter models;
# WEIR_EVAL_JSON=FILE takes weir's side from a `weir eval --json` already run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/peers.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
install_peers
shared="${WEIR_SHARED:-$(cd .. && pwd)/shared}"
bash scripts/build.sh
bash scripts/setup-ort.sh >/dev/null
weir="$CARGO_TARGET_DIR/release/weir"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# Suricata over every labelled capture with the rules loaded once: unix-socket mode (each
# capture queued with its own output folder, named after its path), as peers/README.md says.
mkdir -p "$tmp/rules" "$tmp/out"
gunzip -c "$shared/peers/et-open.rules.gz" > "$tmp/rules/et-open.rules"
sed -e 's|^\( *\)EXTERNAL_NET:.*|\1EXTERNAL_NET: "any"|' \
    -e "s|^default-rule-path:.*|default-rule-path: $tmp/rules|" \
    /etc/suricata/suricata.yaml > "$tmp/peer.yaml"
python3 - "$tmp/peer.yaml" <<'PY'
import re, sys
p = sys.argv[1]; s = open(p).read()
s = re.sub(r"(?ms)^rule-files:\n(?:\s+- .*\n)+", "rule-files: []\n", s)
open(p, "w").write(s)
PY
sock="$tmp/suricata.sock"
sc() { suricatasc -c "$1" "$sock" | python3 -c "import sys, json; print(json.load(sys.stdin)['message'])"; }
start=$(date +%s)
suricata -c "$tmp/peer.yaml" -S "$tmp/rules/et-open.rules" --unix-socket="$sock" -k none \
  --runmode single -l "$tmp/out" > "$tmp/suricata.log" 2>&1 &
spid=$!
trap 'kill $spid 2>/dev/null || true; rm -rf "$tmp"' EXIT
until suricatasc -c uptime "$sock" >/dev/null 2>&1; do
  kill -0 $spid 2>/dev/null || { tail -20 "$tmp/suricata.log"; exit 1; }
  sleep 1
done
echo "Suricata $(suricata -V | awk '{print $5}') + ET Open: $(grep -c . "$tmp/rules/et-open.rules") rule lines loaded in $(( $(date +%s) - start )) s"
n=0
while read -r f; do
  d="$tmp/out/$(echo "$f" | tr '/' '~')"; mkdir -p "$d"
  sc "pcap-file $shared/labeled/$f $d" >/dev/null; n=$((n + 1))
done < <(cd "$shared/labeled" && find attacks normal -type f | sort)
while [ "$(sc pcap-file-number)" != 0 ] || [ "$(sc pcap-current)" != None ]; do sleep 1; done
sc shutdown >/dev/null; wait $spid || true
echo "  $n captures in $(( $(date +%s) - start )) s"

if [ -n "${WEIR_EVAL_JSON:-}" ]; then
  echo "weir: the evaluation in $WEIR_EVAL_JSON (weir eval --json of this build)"
  cp "$WEIR_EVAL_JSON" "$tmp/weir.json"
else
  echo "weir eval (leave one source out) ..."
  start=$(date +%s)
  "$weir" eval --quiet --epochs "${EPOCHS:-30}" --json > "$tmp/weir.json"
  echo "  done in $(( $(date +%s) - start )) s"
fi
python3 scripts/bench_detect.py "$tmp/weir.json" "$tmp/out" "$shared/labeled/LABELS.csv"
# KEEP=DIR keeps both sides' outputs (weir.json, Suricata's per-capture eve.json) there.
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp -r "$tmp/weir.json" "$tmp/out" "$KEEP/"; fi
