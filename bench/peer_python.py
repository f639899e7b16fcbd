#!/usr/bin/env python3
"""The straightforward Python converter, as a peer for the whole-process benchmark.

Usage: peer_python.py SRC_DIR OUT_DIR

For every `*.json.gz` under SRC_DIR: gzip-decompress, `json.loads` the whole
`{"Records":[...]}` document, group the records by (account, region, date of eventTime) and
write one zstd(3) Parquet file per partition per source file with pyarrow, under
`OUT_DIR/account=…/region=…/date=…/<file stem>.parquet`.

Columns: every flat column of the official Athena CloudTrail table with its lowercase name
(strings, `readonly` as the string "true"/"false"), the free-form bodies as compact JSON text,
`eventtime_ts` (a UTC timestamp), `source_key` and `source_index`. The nested columns
(`useridentity`, `resources`, `tlsdetails`, `addendum`) are written as JSON text rather than
typed structs, and unknown fields are dropped rather than kept in an `unmapped` column: both make
this peer's job *easier* than parquetrail's, so the ratio against it is conservative.
"""

import gzip
import json
import os
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

FLAT = [
    ("eventversion", "eventVersion"),
    ("eventtime", "eventTime"),
    ("eventsource", "eventSource"),
    ("eventname", "eventName"),
    ("awsregion", "awsRegion"),
    ("sourceipaddress", "sourceIPAddress"),
    ("useragent", "userAgent"),
    ("errorcode", "errorCode"),
    ("errormessage", "errorMessage"),
    ("requestid", "requestID"),
    ("eventid", "eventID"),
    ("eventtype", "eventType"),
    ("apiversion", "apiVersion"),
    ("recipientaccountid", "recipientAccountId"),
    ("sharedeventid", "sharedEventID"),
    ("vpcendpointid", "vpcEndpointId"),
    ("vpcendpointaccountid", "vpcEndpointAccountId"),
    ("eventcategory", "eventCategory"),
    ("sessioncredentialfromconsole", "sessionCredentialFromConsole"),
]
JSON_TEXT = [
    ("useridentity", "userIdentity"),
    ("requestparameters", "requestParameters"),
    ("responseelements", "responseElements"),
    ("additionaleventdata", "additionalEventData"),
    ("resources", "resources"),
    ("serviceeventdetails", "serviceEventDetails"),
    ("addendum", "addendum"),
    ("edgedevicedetails", "edgeDeviceDetails"),
    ("tlsdetails", "tlsDetails"),
    ("insightdetails", "insightDetails"),
]
NO_DICTIONARY = ["eventid", "requestid", "sharedeventid", "requestparameters", "responseelements",
                 "additionaleventdata", "serviceeventdetails", "insightdetails", "source_index"]


def text(v):
    if v is None:
        return None
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def boolean_text(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def table(key, indexed):
    cols = {}
    for name, field in FLAT:
        cols[name] = pa.array([r.get(field) if isinstance(r.get(field), str) else text(r.get(field))
                               for _, r in indexed], pa.string())
    for name, field in JSON_TEXT:
        cols[name] = pa.array([text(r.get(field)) for _, r in indexed], pa.string())
    cols["readonly"] = pa.array([boolean_text(r.get("readOnly")) for _, r in indexed], pa.string())
    cols["managementevent"] = pa.array(
        [r.get("managementEvent") if isinstance(r.get("managementEvent"), bool) else None for _, r in indexed],
        pa.bool_())
    cols["eventtime_ts"] = pc.strptime(cols["eventtime"], format="%Y-%m-%dT%H:%M:%SZ", unit="us", error_is_null=True) \
        .cast(pa.timestamp("us", tz="UTC"))
    cols["source_key"] = pa.array([key] * len(indexed), pa.string())
    cols["source_index"] = pa.array([i for i, _ in indexed], pa.int32())
    return pa.table(cols)


def convert(src_root, path, out_root):
    key = os.path.relpath(path, src_root).replace(os.sep, "/")
    key_parts = key.split("/")
    with gzip.open(path, "rb") as f:
        doc = json.load(f)
    partitions = {}
    for i, r in enumerate(doc.get("Records") or []):
        t = r.get("eventTime")
        if not isinstance(t, str) or len(t) < 10:
            continue
        ui = r.get("userIdentity") or {}
        account = r.get("recipientAccountId") or ui.get("accountId") or "unknown"
        region = r.get("awsRegion") or "unknown"
        partitions.setdefault((account, region, t[:10]), []).append((i, r))
    stem = key_parts[-1][: -len(".json.gz")] if key.endswith(".json.gz") else key_parts[-1]
    written = 0
    for (account, region, date), indexed in sorted(partitions.items()):
        directory = os.path.join(out_root, f"account={account}", f"region={region}", f"date={date}")
        os.makedirs(directory, exist_ok=True)
        pq.write_table(table(key, indexed), os.path.join(directory, stem + ".parquet"),
                       compression="zstd", compression_level=3, row_group_size=128 * 1024,
                       use_dictionary=[c for c in table_columns() if c not in NO_DICTIONARY])
        written += len(indexed)
    return written


def table_columns():
    return [n for n, _ in FLAT] + [n for n, _ in JSON_TEXT] + ["readonly", "managementevent", "eventtime_ts",
                                                              "source_key", "source_index"]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    rows = files = 0
    for root, _, names in os.walk(src):
        for name in sorted(names):
            if name.endswith(".json.gz") and "CloudTrail-Digest" not in root:
                rows += convert(src, os.path.join(root, name), out)
                files += 1
    print(f"python peer: {files} files, {rows} rows")


if __name__ == "__main__":
    main()
