#!/usr/bin/env python3
"""How many Parquet bytes a query over the common audit columns reads.

Usage: query_bytes.py OUT_DIR [GZIP_INPUT_BYTES]

Sums, over every `*.parquet` under OUT_DIR, the compressed size of the column chunks of the
columns the common audit queries touch (eventtime, eventname, eventsource, useridentity.arn,
useridentity.type, sourceipaddress, errorcode) plus each file's footer — what an engine that
prunes columns must fetch — and prints it next to the total Parquet bytes (and, given the gzip
input size, both as a fraction of it). Matches leaf columns by dotted path, case-insensitively,
so it reads parquetrail's, DuckDB's and the Python peer's outputs alike (the Python peer keeps
`useridentity` as one JSON text column, which is then counted whole).
"""

import json
import os
import sys

import pyarrow.parquet as pq

AUDIT = ["eventtime", "eventname", "eventsource", "useridentity.arn", "useridentity.type",
         "sourceipaddress", "errorcode"]


def wanted(path):
    p = path.lower()
    return any(p == a or (a == "useridentity.arn" and p == "useridentity") for a in AUDIT)


def measure(out_dir):
    total = audit = footer = files = row_groups = 0
    per_column = {}
    dictionary = {}
    for root, _, names in os.walk(out_dir):
        for name in names:
            if not name.endswith(".parquet"):
                continue
            path = os.path.join(root, name)
            size = os.path.getsize(path)
            meta = pq.ParquetFile(path).metadata
            files += 1
            total += size
            footer += meta.serialized_size + 8
            for g in range(meta.num_row_groups):
                rg = meta.row_group(g)
                row_groups += 1
                for c in range(rg.num_columns):
                    col = rg.column(c)
                    if wanted(col.path_in_schema):
                        audit += col.total_compressed_size
                        key = col.path_in_schema.lower()
                        per_column[key] = per_column.get(key, 0) + col.total_compressed_size
                        d = dictionary.setdefault(key, {"chunks": 0, "dictionary": 0, "min_max": 0})
                        d["chunks"] += 1
                        d["dictionary"] += col.dictionary_page_offset is not None
                        d["min_max"] += col.statistics is not None and (
                            col.statistics.has_min_max or col.statistics.null_count == rg.num_rows)
    return {"files": files, "row_groups": row_groups, "parquet_bytes": total, "footer_bytes": footer,
            "audit_column_bytes": audit, "audit_read_bytes": audit + footer, "per_column": per_column,
            "chunks_with_dictionary_and_min_max": dictionary}


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    m = measure(sys.argv[1])
    if len(sys.argv) == 3:
        gz = int(sys.argv[2])
        m["gzip_input_bytes"] = gz
        m["parquet_over_gzip"] = m["parquet_bytes"] / gz
        m["audit_read_over_gzip"] = m["audit_read_bytes"] / gz
    print(json.dumps(m, indent=2))


if __name__ == "__main__":
    main()
