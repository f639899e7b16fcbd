"""Reads a parquetrail archive with two independent engines and prints what they see as JSON.

Usage: read_archive.py ARCHIVE_DIR
Used by the end-to-end tests; the Rust side compares the answers with the input records.
"""
import json
import os
import sys

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds


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
    root = sys.argv[1]
    json.dump({"duckdb": duckdb_view(root), "pyarrow": pyarrow_view(root)}, sys.stdout)
