# Sourced by the benchmark scripts: install the peers weir is measured against (Debian
# packages: GNU time, tshark, capinfos/mergecap; Suricata from bookworm-backports) if missing.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -f /var/lib/apt/periodic/weir-updated ]; then apt-get update -qq; mkdir -p /var/lib/apt/periodic; touch /var/lib/apt/periodic/weir-updated; fi
  apt-get install -y -qq "$@" >/dev/null
}
install_peers() {
command -v /usr/bin/time >/dev/null || apt_install time
command -v tshark >/dev/null || apt_install tshark
command -v mergecap >/dev/null || apt_install wireshark-common
if ! command -v suricata >/dev/null; then
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/bookworm-backports.list
    rm -f /var/lib/apt/periodic/weir-updated
  fi
  apt_install -t bookworm-backports suricata
fi
}

# bench_setup [CAPTURE]: the start of every benchmark script: the shared target directory,
# `cap` (the capture: the argument, else ~/.cache/weir/bench.pcap, built if missing), `runs`
# (RUNS, default 3), the peers installed.
bench_setup() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
  cap="${1:-$HOME/.cache/weir/bench.pcap}"
  runs="${RUNS:-3}"
  install_peers
  bench_capture "$cap"
}

# bench_capture PATH: build the ~216 MB benchmark capture with ../shared/bench if it is missing.
bench_capture() {
  local cap="$1" shared="${WEIR_SHARED:-$(cd .. && pwd)/shared}"
  if [ ! -s "$cap" ]; then
    echo "building the benchmark capture $cap (a few minutes) ..."
    mkdir -p "$(dirname "$cap")"
    bash "$shared/bench/make-bench-pcap" "$cap"
  fi
}
