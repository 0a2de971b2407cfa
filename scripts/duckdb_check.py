"""weir's results as DuckDB reads them (run by scripts/duckdb.sh check DATA_DIR ID).

Checks, printing what it found: the results and the search layout read with
read_parquet(..., hive_partitioning=1); every column is snake_case and has a description in
the file's key-value metadata (weir.columns), with weir.feature_version beside it; the times
are timestamps with time zone (TIMESTAMPTZ_NS: ns, UTC); the search layout holds every flow of the results once, with the
partition column (day, month or year) from the path.
"""
import json
import re
import sys

import duckdb

data, cid = sys.argv[1], sys.argv[2]
base = f"{data}/captures/{cid}"
con = duckdb.connect()


def one(sql):
    return con.execute(sql).fetchone()


results = f"read_parquet('{base}/results/*.parquet')"
search = f"read_parquet('{base}/flows/*/*.parquet', hive_partitioning=1)"
cols = con.execute(f"DESCRIBE SELECT * FROM {results}").fetchall()
names = [c[0] for c in cols]
types = {c[0]: c[1] for c in cols}
bad = [n for n in names if not re.fullmatch(r"[a-z][a-z0-9_]*", n)]
assert not bad, f"not snake_case: {bad}"
assert types["first_ts"] in ("TIMESTAMPTZ_NS", "TIMESTAMP WITH TIME ZONE"), types["first_ts"]
assert types["last_ts"] == types["first_ts"], types["last_ts"]
kv = {
    k.decode(): v.decode()
    for k, v in con.execute(
        f"SELECT key, value FROM parquet_kv_metadata('{base}/results/*.parquet')"
    ).fetchall()
}
assert kv.get("weir.feature_version", "").startswith("weir-features/"), kv.keys()
docs = json.loads(kv["weir.columns"])
undocumented = [n for n in names if not docs.get(n, {}).get("description")]
assert not undocumented, f"no description: {undocumented}"
assert docs["flow_bytes_per_s"]["cicflowmeter_name"] == "Flow Bytes/s", docs["flow_bytes_per_s"]
flows = one(f"SELECT count(*) FROM {results}")[0]
snames = [c[0] for c in con.execute(f"DESCRIBE SELECT * FROM {search}").fetchall()]
part = [p for p in ("day", "month", "year") if p in snames]
assert part, f"no partition column from the path: {snames}"
n, distinct = one(f"SELECT count(*), count(DISTINCT (shard, \"row\")) FROM {search}")
assert n == flows == distinct, (n, flows, distinct)
skv = {
    k.decode(): v.decode()
    for k, v in con.execute(
        f"SELECT key, value FROM parquet_kv_metadata('{base}/flows/*/*.parquet')"
    ).fetchall()
}
sdocs = json.loads(skv["weir.columns"])
undocumented = [c for c in snames if c not in part and not sdocs.get(c, {}).get("description")]
assert not undocumented, f"search layout, no description: {undocumented}"
first = one(f"SELECT min(first_ts) FROM {search}")[0]
top = con.execute(
    f"SELECT class, count(*) FROM {search} WHERE alert GROUP BY 1 ORDER BY 2 DESC LIMIT 3"
).fetchall()
print(
    f"duckdb {duckdb.__version__}: {flows} flows in results ({len(names)} columns, all described), "
    f"{n} in the search layout by {part[0]}, first packet {first}, alerts by class {top}"
)
