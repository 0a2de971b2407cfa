#!/usr/bin/env bash
# The README's first command: build `weir` and the web bundle (scripts/build.sh), put `weir` on PATH
# (scripts/install.sh: ~/.local/bin), analyze the shipped sample capture with the built-in
# model (flows -> classification -> Parquet results + summary), show what was found, then
# serve the results in the web app (weir serve, http://127.0.0.1:8080/; WEIR_SERVE_ADDR
# changes the address) until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --bin weir
bash scripts/install.sh
weir="${WEIR_PREFIX:-$HOME/.local}/bin/weir"
"$weir" analyze samples/loopback.pcapng --data-dir data
echo
"$weir" status --data-dir data
cat <<'MSG'

What is where: data/captures/ID/ holds summary.json (what the table above shows, as JSON),
results/*.parquet (one row per flow: tuple, times, features, class, class probabilities,
anomaly score), flows/ (the search layout, by day), status.json: the layout the pipeline
writes to S3. Next:
  weir analyze YOUR.pcap               # any PCAP/PCAPNG; --json for the summary as JSON
  weir status --data-dir data          # the captures analyzed into data/
  duckdb -c "SELECT class, count(*) FROM read_parquet('data/captures/*/flows/*/*.parquet', hive_partitioning=1) GROUP BY 1"
  weir serve --data-dir data           # the web app over data/ (what follows now)

MSG
exec "$weir" serve --data-dir data
