#!/usr/bin/env python3
"""The SPEC's pin cleaning (SPEC §5) in another engine, NDJSON objects → one Parquet file.

Used by `pinpipe bench --peers` as the comparison point: the same generated NDJSON, the same
cleaning rules, written by DuckDB or polars instead of pinpipe.

    python3 scripts/peer_clean.py ENGINE OUT.parquet FILE.ndjson...

ENGINE: duckdb | polars. Prints one JSON object:
{"engine": ..., "rows": n, "wall_seconds": s, "cpu_seconds": s, "peak_mib": m}
(CPU time of every thread of this process during the cleaning; peak RSS of the process).
"""
import json
import resource
import sys
import time

SENTINELS = {
    "title": ["No Title Data Available"],
    "description": ["No description available Story format", "No description available"],
    "poster_name": ["User Info Error"],
    "follower_count": ["User Info Error"],
    "tag_list": ["N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"],
    "image_src": ["Image src error."],
}
STRINGS = ["unique_id", "title", "description", "poster_name", "follower_count", "tag_list",
           "is_image_or_video", "image_src", "save_location", "category"]
NULLS = ["", " ", "NULL", "null"]
FOLLOWERS = r"^([0-9]+(?:\.[0-9]+)?)([kKmMbB]?)$"


def sql_list(values):
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def run_duckdb(out, files):
    import duckdb

    con = duckdb.connect()
    columns = {"index": "BIGINT", "downloaded": "BIGINT"}
    columns.update({c: "VARCHAR" for c in STRINGS})
    cleaned = {
        c: f"CASE WHEN \"{c}\" IN ({sql_list(NULLS + SENTINELS.get(c, []))}) THEN NULL ELSE \"{c}\" END"
        for c in STRINGS
    }
    fc = cleaned["follower_count"]
    followers = (
        f"CAST(round(TRY_CAST(regexp_extract({fc}, '{FOLLOWERS}', 1) AS DOUBLE) * "
        f"CASE lower(regexp_extract({fc}, '{FOLLOWERS}', 2)) WHEN 'k' THEN 1e3 WHEN 'm' THEN 1e6 "
        f"WHEN 'b' THEN 1e9 ELSE 1 END) AS BIGINT)"
    )
    save = cleaned["save_location"]
    select = ",\n".join([
        '"index" AS ind',
        cleaned["unique_id"] + " AS unique_id",
        cleaned["title"] + " AS title",
        cleaned["description"] + " AS description",
        followers + " AS follower_count",
        cleaned["poster_name"] + " AS poster_name",
        cleaned["tag_list"] + " AS tag_list",
        cleaned["is_image_or_video"] + " AS is_image_or_video",
        cleaned["image_src"] + " AS image_src",
        f"CASE WHEN starts_with({save}, 'Local save in ') THEN substr({save}, 15) ELSE {save} END AS save_location",
        cleaned["category"] + " AS category",
    ])
    struct = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
    source = f"read_json([{sql_list(files)}], format = 'newline_delimited', columns = {struct})"
    con.execute(f"COPY (SELECT DISTINCT {select} FROM {source}) TO '{out}' (FORMAT parquet)")
    return con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]


def run_polars(out, files):
    import polars as pl

    schema = {"index": pl.Int64, "downloaded": pl.Int64}
    schema.update({c: pl.String for c in STRINGS})
    cleaned = {
        c: pl.when(pl.col(c).is_in(NULLS + SENTINELS.get(c, []))).then(None).otherwise(pl.col(c))
        for c in STRINGS
    }
    fc = cleaned["follower_count"]
    number = fc.str.extract(FOLLOWERS, 1).cast(pl.Float64, strict=False)
    unit = fc.str.extract(FOLLOWERS, 2).str.to_lowercase()
    scale = (pl.when(unit == "k").then(1e3).when(unit == "m").then(1e6)
             .when(unit == "b").then(1e9).otherwise(1.0))
    save = cleaned["save_location"]
    lf = pl.scan_ndjson(files, schema=schema).select(
        pl.col("index").alias("ind"),
        cleaned["unique_id"].alias("unique_id"),
        cleaned["title"].alias("title"),
        cleaned["description"].alias("description"),
        (number * scale).round(0).cast(pl.Int64).alias("follower_count"),
        cleaned["poster_name"].alias("poster_name"),
        cleaned["tag_list"].alias("tag_list"),
        cleaned["is_image_or_video"].alias("is_image_or_video"),
        cleaned["image_src"].alias("image_src"),
        save.str.strip_prefix("Local save in ").alias("save_location"),
        cleaned["category"].alias("category"),
    ).unique(maintain_order=True)
    lf.sink_parquet(out)
    return pl.scan_parquet(out).select(pl.len()).collect().item()


def peak_mib():
    """Peak RSS of this process image (VmHWM). Not ru_maxrss: Linux carries the parent's peak
    across fork and exec into it, so a child started by a large process would report that."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    engine, out, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    run = {"duckdb": run_duckdb, "polars": run_polars}.get(engine)
    if run is None:
        sys.exit(f"unknown engine {engine}: use duckdb or polars")
    try:
        __import__(engine)
    except ImportError:
        sys.exit(f"{engine} is not installed: pip install {engine}")
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    rows = run(out, files)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"engine": engine, "rows": rows, "wall_seconds": wall,
                      "cpu_seconds": cpu, "peak_mib": peak_mib()}))


if __name__ == "__main__":
    main()
