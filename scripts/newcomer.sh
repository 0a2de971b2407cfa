#!/usr/bin/env bash
# A new user's first steps, checked: a fresh clone of this repository (its working tree, as a
# clean checkout would have it) in a temporary folder with ../shared beside it, a fresh HOME
# with nothing in it, then the README's first command exactly as the README writes it, then
# `weir` by name from PATH (as the note the install prints says), on the sample and from
# another directory, and `weir --help`.
#
#   scripts/newcomer.sh            warm: reuses $CARGO_TARGET_DIR (default ~/.cache/weir/target
#                                  of the real HOME) and the cargo registry, so it checks the
#                                  steps, not the compile time (what CI runs, from test.sh)
#   NEWCOMER_COLD=1 scripts/newcomer.sh
#                                  cold: a fresh target directory and cargo registry too; prints
#                                  the wall time, peak RSS and disk used of the first command,
#                                  then runs the README's test command in the same clone and
#                                  HOME and prints the same for it (NEWCOMER_KEEP=1 keeps logs)
# NEWCOMER_KEEP=1 keeps the temporary folder.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
shared="${WEIR_SHARED:-$repo/../shared}"
real_home="$HOME"
# A fixed folder: cargo keys a path dependency's artefacts by its path, so with the shared
# target directory the same path reuses the last run's instead of adding a set per run.
tmp="${NEWCOMER_DIR:-/tmp/weir-newcomer}"
rm -rf "$tmp"
mkdir -p "$tmp"
[ "${NEWCOMER_KEEP:-0}" = 1 ] || trap 'rm -rf "$tmp"' EXIT
echo "newcomer: fresh clone and HOME in $tmp" >&2

# The clone: what `git clone` gives, with the working tree's uncommitted (not ignored) changes
# on top, so a run before a commit checks what is about to be committed.
git clone -q --no-hardlinks "$repo" "$tmp/weir"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) 2>/dev/null \
  | (cd "$tmp/weir" && tar -xf -)
(cd "$repo" && git ls-files -z --deleted) | (cd "$tmp/weir" && xargs -0 -r rm -f)
[ -d "$shared" ] && ln -s "$(cd "$shared" && pwd)" "$tmp/shared"

mkdir -p "$tmp/home"
# cargo and rustc from the caller's PATH (rustup's proxies or a toolchain's bin, wherever
# CARGO_HOME points), nothing else of the caller's.
cargo_bin="$(dirname "$(command -v cargo)")"
env_args=(HOME="$tmp/home" USER="${USER:-root}" LANG=C.UTF-8 TERM=dumb
  PATH="$cargo_bin:/usr/local/bin:/usr/bin:/bin"
  RUSTUP_HOME="${RUSTUP_HOME:-$real_home/.rustup}")
if [ "${NEWCOMER_COLD:-0}" = 1 ]; then
  env_args+=(CARGO_HOME="$tmp/cargo-home")
  mkdir -p "$tmp/cargo-home"
  ln -s "$cargo_bin" "$tmp/cargo-home/bin"
else
  env_args+=(CARGO_HOME="${CARGO_HOME:-$real_home/.cargo}"
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$real_home/.cache/weir/target}")
fi

# The README's first command, as written: the first line of its first sh block.
first="$(awk '/^```sh/{f=1; next} f{print; exit}' "$tmp/weir/README.md" | sed 's/[[:space:]]*#.*$//')"
[ -n "$first" ] || { echo "newcomer: no first command in README.md" >&2; exit 1; }
echo "newcomer: \$ $first" >&2
t0=$(date +%s)
# It ends serving the results (weir serve, until Ctrl-C): run it in the background on a free
# port, wait for the app's address, open the captures page, then stop it by PID.
(cd "$tmp/weir" && exec env -i "${env_args[@]}" WEIR_SERVE_ADDR=127.0.0.1:0 \
  /usr/bin/time -v -o "$tmp/time" bash -c "$first") > "$tmp/first.out" 2>&1 &
first_pid=$!
url=""
while kill -0 "$first_pid" 2>/dev/null; do
  url=$(grep -o 'weir serve: the results in data at http://[0-9.:]*/' "$tmp/first.out" | grep -o 'http://.*' || true)
  [ -n "$url" ] && break
  sleep 2
done
[ -n "$url" ] || { wait "$first_pid" || true; tail -40 "$tmp/first.out" >&2
  echo "newcomer: the README's first command did not end serving the app" >&2; exit 1; }
t1=$(date +%s)
page=$(curl -fsS "$url" || true)
pkill -TERM -f "$tmp/home/.local/bin/weir serve" || true
wait "$first_pid" 2>/dev/null || true
echo "$page" | grep -q "loopback-" || { echo "$page" | head -c 2000 >&2; echo "newcomer: $url does not list the sample" >&2; exit 1; }
grep -q "alerts" "$tmp/first.out" || { cat "$tmp/first.out" >&2; echo "newcomer: no summary in its output" >&2; exit 1; }
grep -q "not on your PATH" "$tmp/first.out" || { cat "$tmp/first.out" >&2; echo "newcomer: no PATH note for a fresh HOME" >&2; exit 1; }

# Then `weir` by name, with ~/.local/bin on PATH as the note says, from another directory.
mkdir -p "$tmp/elsewhere"
cp "$tmp/weir/samples/loopback.pcapng" "$tmp/elsewhere/mine.pcapng"
(cd "$tmp/elsewhere" && env -i "${env_args[@]}" CLONE="$tmp/weir" bash -c '
  export PATH="$HOME/.local/bin:$PATH"
  set -e
  [ "$(command -v weir)" = "$HOME/.local/bin/weir" ]
  weir --help | grep -q "analyze"
  weir analyze mine.pcapng --json > summary.json
  weir status | grep -q "^mine-"
  test -d weir-data/captures
  cd "$CLONE"
  bash scripts/install-just.sh
  just --list | grep -q localstack-up
') > "$tmp/second.out" 2>&1 || { cat "$tmp/second.out" >&2; echo "newcomer: weir from PATH failed" >&2; exit 1; }
python3 - "$tmp/elsewhere/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["status"] == "done" and s["flows"] > 0 and "timeline" in s and "alert_groups" in s, s
PY

peak_kb=$(awk -F': ' '/Maximum resident set size/{print $2}' "$tmp/time")
target="${CARGO_TARGET_DIR:-$real_home/.cache/weir/target}"
[ "${NEWCOMER_COLD:-0}" = 1 ] && target="$tmp/home/.cache/weir/target"
echo "newcomer: ok: README's first command $((t1 - t0)) s, peak RSS $((peak_kb / 1024)) MB;" \
  "target dir $(du -sh "$target" 2>/dev/null | cut -f1), fresh HOME $(du -sh --exclude=.cache/weir/target "$tmp/home" | cut -f1);" \
  "weir $(du -h "$tmp/home/.local/bin/weir" | cut -f1)" >&2

# Cold: the slowest units of that build (cargo's --timings report, which scripts/build.sh asks for).
if [ "${NEWCOMER_COLD:-0}" = 1 ]; then
  python3 - "$target"/cargo-timings/cargo-timing.html <<'PY' >&2 || true
import json, re, sys
d = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);\n", open(sys.argv[1]).read(), re.S).group(1))
print(f"newcomer: the first command's build: {len(d)} units, {sum(u['duration'] for u in d) / 60:.1f} CPU-min; the slowest:")
for u in sorted(d, key=lambda u: -u["duration"])[:20]:
    print(f"  {u['duration']:7.1f} s  {u['name']} {u['version']} {u.get('target', '').strip()}")
PY
fi

# Cold: then the README's test command, in the same clone and HOME, as a new contributor runs
# it next (its own newcomer check inside runs warm, in a folder of its own).
if [ "${NEWCOMER_COLD:-0}" = 1 ]; then
  second="$(awk '/^```sh/{f=1; next} f{n++; if (n == 2) {print; exit}}' "$tmp/weir/README.md" | sed 's/[[:space:]]*#.*$//')"
  echo "newcomer: \$ $second" >&2
  t2=$(date +%s)
  (cd "$tmp/weir" && exec env -i "${env_args[@]}" NEWCOMER_DIR="$tmp/inner" \
    /usr/bin/time -v -o "$tmp/time2" bash -c "$second") > "$tmp/test.out" 2>&1 || {
    tail -60 "$tmp/test.out" >&2; echo "newcomer: the README's test command failed (log: $tmp/test.out)" >&2; exit 1; }
  t3=$(date +%s)
  peak2_kb=$(awk -F': ' '/Maximum resident set size/{print $2}' "$tmp/time2")
  echo "newcomer: ok: README's test command $((t3 - t2)) s, peak RSS $((peak2_kb / 1024)) MB;" \
    "target dir then $(du -sh "$target" 2>/dev/null | cut -f1)" >&2
fi
