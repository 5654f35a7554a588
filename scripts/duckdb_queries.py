#!/usr/bin/env python3
"""Runs the pipeline's SQL queries in DuckDB over the Parquet files of a lake's tables.

Used by `pinpipe bench --only queries` as the comparison point: the same SQL text
(lake/sql/*.sql), the same Parquet files, a different engine.

    python3 scripts/duckdb_queries.py MANIFEST.json

MANIFEST.json: {"tables": {"pin": [parquet paths], "geo": [...], "user": [...]},
                "views": "<views.sql>", "queries": {"<name>": "<sql>", ...}}
Prints one JSON object: {"total_seconds": s, "queries": {"<name>": {"seconds": s, "rows": n}}}.
"""
import json
import sys
import time

try:
    import duckdb
except ImportError:
    sys.exit("duckdb is not installed: pip install duckdb")


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        manifest = json.load(f)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    start = time.perf_counter()
    for table, files in manifest["tables"].items():
        listed = ", ".join("'" + p.replace("'", "''") + "'" for p in files)
        con.execute(f"CREATE VIEW raw_{table} AS SELECT * FROM read_parquet([{listed}])")
    views = "\n".join(l for l in manifest["views"].splitlines() if not l.lstrip().startswith("--"))
    for statement in views.split(";"):
        if statement.strip():
            con.execute(statement)
    results = {}
    for name, sql in manifest["queries"].items():
        t = time.perf_counter()
        rows = con.execute(sql).fetchall()
        results[name] = {"seconds": time.perf_counter() - t, "rows": len(rows)}
    print(json.dumps({"total_seconds": time.perf_counter() - start, "queries": results}))


if __name__ == "__main__":
    main()
