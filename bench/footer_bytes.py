#!/usr/bin/env python3
"""Where the bytes of Parquet footers go: bytes per Thrift field of FileMetaData, per file.

Usage: footer_bytes.py OUT_DIR

Walks every `*.parquet` under OUT_DIR, decodes each footer's Thrift compact encoding (no Parquet
library needed) and sums the bytes of each field, including nested ones (row group → column chunk
→ column metadata → statistics …). Shows which metadata a per-delivery file pays for: with ~74 leaf
columns and tens of rows per file, the footer is a large share of every file.
"""

import collections
import os
import struct
import sys

# Field ids of FileMetaData (4 = row_groups), RowGroup (1 = columns), ColumnChunk, ColumnMetaData.
NAMES = {
    (2,): "schema", (4,): "row_groups", (5,): "key_value_metadata", (6,): "created_by", (7,): "column_orders",
    (4, 1): "row_group.columns",
    (4, 1, 2): "column.file_offset", (4, 1, 3): "column.meta_data",
    (4, 1, 4): "column.offset_index_offset", (4, 1, 5): "column.offset_index_length",
    (4, 1, 6): "column.column_index_offset", (4, 1, 7): "column.column_index_length",
    (4, 1, 3, 1): "meta.type", (4, 1, 3, 2): "meta.encodings", (4, 1, 3, 3): "meta.path_in_schema",
    (4, 1, 3, 4): "meta.codec", (4, 1, 3, 5): "meta.num_values", (4, 1, 3, 6): "meta.total_uncompressed_size",
    (4, 1, 3, 7): "meta.total_compressed_size", (4, 1, 3, 9): "meta.data_page_offset",
    (4, 1, 3, 11): "meta.dictionary_page_offset", (4, 1, 3, 12): "meta.statistics",
    (4, 1, 3, 13): "meta.encoding_stats", (4, 1, 3, 16): "meta.size_statistics",
}


def varint(b, i):
    value = shift = 0
    while True:
        x = b[i]
        i += 1
        value |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            return value, i


def skip(b, i, kind):
    """Skips one value of compact type `kind` at i; returns the next position."""
    if kind in (1, 2):  # booleans live in the type nibble
        return i
    if kind == 3:
        return i + 1
    if kind in (4, 5, 6):
        return varint(b, i)[1]
    if kind == 7:
        return i + 8
    if kind == 8:
        n, i = varint(b, i)
        return i + n
    if kind in (9, 10):
        head = b[i]
        i += 1
        n, item = head >> 4, head & 15
        if n == 15:
            n, i = varint(b, i)
        for _ in range(n):
            i = skip(b, i, item)
        return i
    if kind == 12:
        return struct_(b, i, None, None)
    raise ValueError(f"unknown compact type {kind}")


def struct_(b, i, path, sizes):
    """Reads a struct at i, adding each field's bytes to sizes[path + (field id,)]."""
    field = 0
    while True:
        head = b[i]
        i += 1
        if head == 0:
            return i
        kind, delta = head & 15, head >> 4
        if delta:
            field += delta
        else:
            v, i = varint(b, i)
            field = (v >> 1) ^ -(v & 1)
        start = i
        sub = None if path is None else path + (field,)
        if kind == 12 and sub is not None:
            i = struct_(b, i, sub, sizes)
        elif kind == 9 and sub is not None:
            head2 = b[i]
            i += 1
            n, item = head2 >> 4, head2 & 15
            if n == 15:
                n, i = varint(b, i)
            for _ in range(n):
                i = struct_(b, i, sub, sizes) if item == 12 else skip(b, i, item)
        else:
            i = skip(b, i, kind)
        if sub is not None:
            sizes[sub] += i - start + 1


def main():
    sizes, files, total = collections.Counter(), 0, 0
    for root, _, names in os.walk(sys.argv[1]):
        for name in names:
            if not name.endswith(".parquet"):
                continue
            with open(os.path.join(root, name), "rb") as f:
                data = f.read()
            length = struct.unpack("<i", data[-8:-4])[0]
            struct_(data[-8 - length:-8], 0, (), sizes)
            files += 1
            total += length
    if not files:
        sys.exit("no .parquet files")
    print(f"{files} files, {total / files:,.0f} footer bytes per file")
    for key, n in sorted(sizes.items(), key=lambda kv: -kv[1]):
        if key in NAMES and n > total * 0.005:
            print(f"  {NAMES[key]:32} {n / files:8,.0f} B/file {100 * n / total:5.1f}%")


if __name__ == "__main__":
    main()
