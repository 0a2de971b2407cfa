#!/usr/bin/env python3
"""Time GET requests against a running `weir serve` (part of `just bench-search`).

    bench_http.py BASE TARGET_MS LABEL PATH [PATH ...]   (PATH may hold {i}: the run number,
{c}: it modulo 10, {day}: 10 + it)

Each PATH is one query; it runs 1 + RUNS times (RUNS from WEIR_BENCH_RUNS, default 10), {i}
replaced by the run number, so a query can change every run. Prints the first run (the one
that may read parts from the store) and p50/p95 of the others, and p95 against TARGET_MS.
"""
import os
import sys
import time
import urllib.request


def get(url):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as r:
        body = r.read()
        if r.status != 200:
            raise SystemExit(f"{url}: {r.status}")
    return (time.perf_counter() - t0) * 1e3, len(body)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round((len(xs) - 1) * q))]


def main():
    base, target, label, paths = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
    runs = int(os.environ.get("WEIR_BENCH_RUNS", "10"))
    for path in paths:
        times, size = [], 0
        for i in range(runs + 1):
            ms, size = get(base + path.replace("{i}", str(i)).replace("{c}", str(i % 10)).replace("{day}", str(10 + i)))
            times.append(ms)
        warm = times[1:]
        p50, p95 = pct(warm, 0.5), pct(warm, 0.95)
        name = f"{label} {path}"
        print(f"{name[:78]:<78} {times[0]:>8.0f} {p50:>8.0f} {p95:>8.0f} {p95 / target:>7.1f}x  ({size // 1024} KiB)")


if __name__ == "__main__":
    main()
