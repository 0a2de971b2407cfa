#!/usr/bin/env python3
"""`just bench-abuse`: weir serve under a heavy user (issue 29), printed against the targets.

    bench_abuse.py WEIR DATA_DIR

Starts `weir serve` over DATA_DIR (the 1 M-row search layout bench-search generates) and
measures, sampling the server's resident memory every 20 ms from /proc:
  - a 10,000-address IOC list (POST /api/search): first run and p95 of the warm runs;
  - 50 searches at once: p95 latency, and the server's peak RSS meanwhile;
  - every row exported as JSON Lines (streamed to nowhere): peak RSS over idle and over warm;
  - a 1 GiB upload (a PCAP generated while it is sent): peak RSS over the RSS before it.
"idle" is the server just started; "warm" after the first search has read every part (the
search cache: issue 31 bounds it).
"""
import concurrent.futures
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Peak:
    """The peak RSS of a process while a block runs."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def __enter__(self):
        self.peak = rss_mb(self.pid)

        def run():
            while not self.stop.is_set():
                self.peak = max(self.peak, rss_mb(self.pid))
                time.sleep(0.02)

        self.t = threading.Thread(target=run, daemon=True)
        self.t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        self.t.join()
        self.peak = max(self.peak, rss_mb(self.pid))


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round((len(xs) - 1) * q))]


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    t0 = time.perf_counter()
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    n = 0
    while True:
        chunk = r.read(1 << 20)
        if not chunk:
            break
        n += len(chunk)
    c.close()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status}")
    return (time.perf_counter() - t0) * 1e3, n


def pcap_stream(total):
    """A PCAP of about `total` bytes: the header, then 1,500-byte UDP frames."""
    yield struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    frame = bytearray(1500)
    frame[12:14] = b"\x08\x00"
    frame[14:34] = bytes([0x45, 0, 0x05, 0xD2, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
    chunk = bytearray()
    sent, i = 24, 0
    while sent < total:
        i += 1
        chunk += struct.pack("<IIII", 1_700_000_000 + i // 1000, (i % 1000) * 1000, 1500, 1500)
        frame[34:36] = struct.pack(">H", 1024 + i % 50000)
        chunk += frame
        if len(chunk) >= 1 << 20:
            sent += len(chunk)
            yield bytes(chunk)
            chunk = bytearray()
    if chunk:
        yield bytes(chunk)


def main():
    weir, data = sys.argv[1], sys.argv[2]
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "bench-abuse-serve.log"), "w")
    server = subprocess.Popen(
        [weir, "serve", "--addr", f"127.0.0.1:{port}", "--data-dir", data, "--max-upload", str(2 << 30)],
        stderr=log,
    )
    try:
        for _ in range(300):
            try:
                request(port, "GET", "/api/captures")
                break
            except OSError:
                time.sleep(0.2)
        pid = server.pid
        idle = rss_mb(pid)
        first_search, _ = request(port, "GET", "/api/search?limit=100")
        warm = rss_mb(pid)
        total = json.loads(
            http_get(port, "/api/search?limit=1")
        )["total"]
        print(f"bench-abuse: weir serve over {total:,} rows; idle RSS {idle:.0f} MB, "
              f"after the first search {warm:.0f} MB ({first_search:.0f} ms)")
        rows = []

        ioc = " or ".join(f"ip 10.{i // 65536}.{(i // 256) % 256}.{i % 256}" for i in range(10_000))
        body = json.dumps({"q": ioc, "limit": 100}).encode()
        hdr = {"Content-Type": "application/json"}
        runs = [request(port, "POST", "/api/search", body, hdr)[0] for _ in range(11)]
        rows.append(("10,000-address IOC list, POST /api/search", f"first {runs[0]:.0f} ms, p95 {pct(runs[1:], 0.95):.0f} ms", "p95 <= 1,000 ms", pct(runs[1:], 0.95) <= 1000))

        paths = [f"/api/search?q=ip%2010.{i}.3.4%20or%20dport%20{i}&limit=100" for i in range(50)]
        with Peak(pid) as p, concurrent.futures.ThreadPoolExecutor(50) as ex:
            lat = [t for t, _ in ex.map(lambda q: request(port, "GET", q), paths)]
        rows.append(("50 searches at once", f"p95 {pct(lat, 0.95):.0f} ms, peak RSS {p.peak:.0f} MB", "answered", True))

        before = rss_mb(pid)
        with Peak(pid) as p:
            t, n = request(port, "GET", "/api/export?format=jsonl")
        rows.append((f"export of {total:,} rows (JSON Lines, {n / 1e6:.0f} MB in {t / 1e3:.1f} s)",
                     f"peak {p.peak - idle:.0f} MB over idle, {p.peak - before:.0f} MB over warm",
                     "<= 300 MB over idle", p.peak - idle <= 300))

        before = rss_mb(pid)
        size = 1 << 30
        with Peak(pid) as p:
            t, _ = request(port, "POST", "/api/uploads?name=bench-abuse.pcap", pcap_stream(size),
                           {"Content-Type": "application/octet-stream"})
        rows.append((f"1 GiB upload (streamed, {t / 1e3:.1f} s)", f"peak {p.peak - before:.0f} MB over before",
                     "<= 200 MB over idle", p.peak - before <= 200))

        w = max(len(r[0]) for r in rows)
        print(f"{'':<{w}}  {'measured':<44} {'target':<22} ok")
        for name, got, target, ok in rows:
            print(f"{name:<{w}}  {got:<44} {target:<22} {'yes' if ok else 'NO'}")
    finally:
        server.terminate()
        server.wait()


def http_get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("GET", path)
    r = c.getresponse()
    b = r.read()
    c.close()
    return b


if __name__ == "__main__":
    main()
