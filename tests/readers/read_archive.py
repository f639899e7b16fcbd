"""Reads a parquetrail archive with two independent engines and prints what they see as JSON.

Usage: read_archive.py ARCHIVE_DIR
       read_archive.py --manifests ARCHIVE_DIR

With --manifests, each engine reads what Athena reads: the files each partition's
`manifests/<dataset>/account=/region=/date=/symlink.txt` lists (paths relative to the archive in a
local archive), with the partition values taken from the manifest's directory. Without it, every
`.parquet` file under `<dataset>/`.
Used by the end-to-end tests; the Rust side compares the answers with the input records.
"""
import json
import os
import sys

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds


def manifest_files(root, dataset):
    """The files the manifests of a dataset list, with their partition (account, region, date)."""
    base = os.path.join(root, "manifests", dataset)
    out = []
    for dirpath, _, names in os.walk(base):
        if "symlink.txt" not in names:
            continue
        parts = dict(p.split("=", 1) for p in os.path.relpath(dirpath, base).split(os.sep))
        with open(os.path.join(dirpath, "symlink.txt")) as f:
            for line in f:
                if line.strip():
                    out.append((os.path.join(root, line.strip()), parts["account"], parts["region"], parts["date"]))
    return sorted(out)


def manifest_view(root):
    """DuckDB and pyarrow over the manifests' files, plus DuckDB's bloom filter probes."""
    out = {"duckdb": {}, "pyarrow": {}}
    con = duckdb.connect()
    for dataset in ("events", "insights"):
        files = manifest_files(root, dataset)
        if not files:
            continue
        con.execute("CREATE OR REPLACE TEMP TABLE listed (file VARCHAR, account VARCHAR, region VARCHAR, date VARCHAR)")
        con.executemany("INSERT INTO listed VALUES (?, ?, ?, ?)", files)
        paths = [f for f, *_ in files]
        rows = con.execute(
            """SELECT l.account, l.region, l.date, p.source_key, p.source_index, p.eventid, p.eventname,
                      p.eventsource, p.eventtime, p.awsregion, p.sourceipaddress, p.errorcode,
                      p.useridentity.arn
               FROM read_parquet(?, filename=true) p JOIN listed l ON p.filename = l.file""",
            [paths],
        ).fetchall()
        out["duckdb"][dataset] = {"files": len(paths), "rows": [list(r) for r in rows]}
        if dataset == "events":
            # DuckDB's own reading of the bloom filters compaction wrote: every event ID of a file
            # must probe "maybe present" in that file.
            # [present IDs probed, of those not excluded, absent IDs probed, of those excluded]
            probes = [0, 0, 0, 0]
            probe = "SELECT bool_and(bloom_filter_excludes) FROM parquet_bloom_probe(?, 'eventid', ?)"
            for path in paths:
                if "compacted-" not in os.path.basename(path):
                    continue
                ids = [r[0] for r in con.execute("SELECT eventid FROM read_parquet(?) LIMIT 25", [path]).fetchall()]
                for eid in ids:
                    probes[0] += 1
                    probes[1] += not con.execute(probe, [path, eid]).fetchone()[0]
                    probes[2] += 1
                    probes[3] += bool(con.execute(probe, [path, "absent-" + eid]).fetchone()[0])
            out["duckdb"]["bloom_probes"] = list(probes)
        table = ds.dataset(paths, format="parquet").to_table(columns=["eventid", "source_key", "source_index"])
        out["pyarrow"][dataset] = {
            "rows": [list(r) for r in zip(*(table.column(c).to_pylist() for c in table.column_names))]
        }
    return out


def duckdb_view(root):
    out = {}
    con = duckdb.connect()
    for dataset in ("events", "insights"):
        path = os.path.join(root, dataset)
        if not os.path.isdir(path):
            continue
        # hive_types_autocast=false keeps account ids strings (autocast would drop leading zeros).
        src = (f"read_parquet('{path}/**/*.parquet', hive_partitioning=true, "
               f"hive_types_autocast=false)")
        rows = con.execute(
            f"""SELECT account, region, date, source_key, source_index, eventid, eventname,
                       useridentity.sessioncontext.sessionissuer.arn,
                       CAST(epoch_us(eventtime_ts) AS BIGINT), eventtime
                FROM {src}"""
        ).fetchall()
        types = {name: str(ty) for name, ty, *_ in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
        out[dataset] = {"rows": [list(r) for r in rows], "types": types}
    return out


def pyarrow_view(root):
    out = {}
    part = ds.partitioning(
        pa.schema([("account", pa.string()), ("region", pa.string()), ("date", pa.string())]), flavor="hive"
    )
    for dataset in ("events", "insights"):
        path = os.path.join(root, dataset)
        if not os.path.isdir(path):
            continue
        table = ds.dataset(path, format="parquet", partitioning=part).to_table(
            columns=["account", "eventid", "readonly", "managementevent", "eventtime_ts"]
        )
        schema = ds.dataset(path, format="parquet", partitioning=part).schema
        out[dataset] = {
            "rows": table.num_rows,
            "columns": schema.names,
            "eventtime_ts_type": str(schema.field("eventtime_ts").type),
            "readonly_type": str(schema.field("readonly").type),
            "managementevent_type": str(schema.field("managementevent").type),
            "distinct_accounts": sorted(set(table.column("account").to_pylist())),
        }
    return out


if __name__ == "__main__":
    if sys.argv[1] == "--manifests":
        json.dump(manifest_view(sys.argv[2]), sys.stdout)
        sys.exit(0)
    root = sys.argv[1]
    json.dump({"duckdb": duckdb_view(root), "pyarrow": pyarrow_view(root)}, sys.stdout)
