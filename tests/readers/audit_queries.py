"""Proves `parquetrail ddl` on a real engine: runs the generated Spark DDL in Apache Spark SQL with
Hive support over an archive, then typical CloudTrail audit queries on Spark and on DuckDB, and
computes each answer a third way, from the input log files themselves (gzip + json, no parquetrail
code). Prints one JSON document; the Rust test compares the three answers.

Usage: audit_queries.py DDL_FILE TRAIL_DIR ARCHIVE_DIR WORK_DIR

The DDL is run statement by statement exactly as generated. Spark has no partition projection, so
the script also checks what Athena's projection would do: every partition directory the writer
made must be one that the table's projection properties and storage.location.template enumerate.
"""
import collections
import datetime as dt
import gzip
import json
import os
import re
import sys

DATABASE = "cloudtrail"
ACCESS_DENIED = "(errorcode LIKE '%AccessDenied%' OR errorcode LIKE '%UnauthorizedOperation')"
IAM_READS = ("Get", "List", "Generate", "Simulate")  # IAM calls that change nothing


def input_records(trail_dir):
    """Every record of every delivered file, parsed with the standard library only."""
    out = []
    for root, _, files in os.walk(trail_dir):
        for name in sorted(files):
            path = os.path.join(root, name)
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                out.extend(json.load(f)["Records"])
    return out


def expected_answers(records, params):
    events = [r for r in records if r.get("eventCategory") != "Insight"]
    ident = lambda r: r.get("userIdentity") or {}  # noqa: E731

    def extra(r, key):
        data = r.get("additionalEventData")
        return data.get(key) if isinstance(data, dict) else None

    def ms(rows):
        return sorted([list(x) for x in rows], key=json.dumps)

    start, end = params["range_start"], params["range_end"]
    in_range = [r for r in events if start <= parse_time(r["eventTime"]) < end]
    denied = collections.Counter(
        ident(r).get("arn") for r in events
        if (r.get("errorCode") or "") and ("AccessDenied" in r["errorCode"]
                                           or r["errorCode"].endswith("UnauthorizedOperation")))
    iam = collections.Counter(
        r["eventName"] for r in events
        if r.get("eventSource") == "iam.amazonaws.com"
        and not r["eventName"].startswith(IAM_READS))
    return {
        "total_events": [[len(events)]],
        "console_logins_without_mfa": ms(
            (r["eventID"], ident(r).get("arn")) for r in events
            if r.get("eventName") == "ConsoleLogin" and extra(r, "MFAUsed") == "No"),
        "access_denied_by_principal": ms([arn, n] for arn, n in denied.items()),
        "root_activity": ms(
            (r["eventID"], r["eventName"]) for r in events
            if ident(r).get("type") == "Root" and ident(r).get("invokedBy") is None
            and r.get("eventType") != "AwsServiceEvent"),
        "iam_changes": ms([name, n] for name, n in iam.items()),
        "access_key_activity": ms(
            (r["eventID"], r["eventName"], r["eventTime"]) for r in events
            if ident(r).get("accessKeyId") == params["access_key"]),
        "time_range": ms((r["eventID"], r["eventSource"]) for r in in_range),
        "official_timestamp_view": [[sum(
            1 for r in events if r["eventTime"][:10].replace("-", "/") == params["official_day"])]],
    }


def parse_time(s):
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def choose_params(records):
    """Query parameters taken from the input, so every query has answers to check."""
    events = [r for r in records if r.get("eventCategory") != "Insight"]
    keys = collections.Counter(
        (r.get("userIdentity") or {}).get("accessKeyId") for r in events)
    keys.pop(None, None)
    keys.pop("", None)
    times = sorted(parse_time(r["eventTime"]) for r in events)
    days = collections.Counter(t.date() for t in times)
    busiest = max(days, key=lambda d: (days[d], d))
    # Four hours around the midnight with the most events on both sides: the range crosses a
    # date partition and selects from each.
    window = dt.timedelta(hours=2)

    def around(midnight):
        before = sum(1 for t in times if midnight - window <= t < midnight)
        after = sum(1 for t in times if midnight <= t < midnight + window)
        return min(before, after), before + after

    midnight = max((dt.datetime.combine(d, dt.time(), dt.timezone.utc) for d in days), key=around)
    return {
        "access_key": keys.most_common(1)[0][0],
        "range_start": midnight - window,
        "range_end": midnight + window,
        "official_day": busiest.strftime("%Y/%m/%d"),
    }


def queries(params, engine):
    """The audit queries, in each engine's SQL. `events` and `logs` name the table and the view."""
    start = params["range_start"].strftime("%Y-%m-%d %H:%M:%S")
    end = params["range_end"].strftime("%Y-%m-%d %H:%M:%S")
    d0, d1 = params["range_start"].strftime("%Y-%m-%d"), params["range_end"].strftime("%Y-%m-%d")
    if engine == "spark":
        mfa = "get_json_object(additionaleventdata, '$.MFAUsed')"
        ts = lambda s: f"TIMESTAMP '{s}'"  # noqa: E731  (the session time zone is UTC)
        date, timestamp = "`date`", "`timestamp`"
    else:
        mfa = "json_extract_string(additionaleventdata, '$.MFAUsed')"
        ts = lambda s: f"TIMESTAMPTZ '{s}+00:00'"  # noqa: E731
        date, timestamp = '"date"', '"timestamp"'
    not_read = " AND ".join(f"eventname NOT LIKE '{p}%'" for p in IAM_READS)
    return {
        "total_events": "SELECT count(*) FROM {events}",
        "console_logins_without_mfa": f"""SELECT eventid, useridentity.arn FROM {{logs}}
            WHERE eventname = 'ConsoleLogin' AND {mfa} = 'No'""",
        "access_denied_by_principal": f"""SELECT useridentity.arn, count(*) FROM {{events}}
            WHERE {ACCESS_DENIED} GROUP BY useridentity.arn""",
        "root_activity": """SELECT eventid, eventname FROM {events}
            WHERE useridentity.type = 'Root' AND useridentity.invokedby IS NULL
              AND coalesce(eventtype, '') <> 'AwsServiceEvent'""",
        "iam_changes": f"""SELECT eventname, count(*) FROM {{events}}
            WHERE eventsource = 'iam.amazonaws.com' AND {not_read} GROUP BY eventname""",
        "access_key_activity": f"""SELECT eventid, eventname, eventtime FROM {{events}}
            WHERE useridentity.accesskeyid = '{params["access_key"]}'""",
        "time_range": f"""SELECT eventid, eventsource FROM {{events}}
            WHERE {date} BETWEEN '{d0}' AND '{d1}'
              AND eventtime_ts >= {ts(start)} AND eventtime_ts < {ts(end)}""",
        "official_timestamp_view": f"""SELECT count(*) FROM {{logs}}
            WHERE {timestamp} = '{params["official_day"]}'""",
    }


def normalize(rows):
    return sorted([list(r) for r in rows], key=json.dumps)


def statements(ddl):
    """The DDL's statements, comments dropped, in order."""
    text = "\n".join(line for line in ddl.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in text.split(";\n") if s.strip().rstrip(";").strip()]


def projection_check(props, dataset_dir, today):
    """Which partition directories Athena's projection would NOT reach (should be none)."""
    template = props["storage.location.template"]
    location = template[: template.index("account=${account}")]
    pattern = re.escape(template[len(location):])
    for name in ("account", "region", "date"):
        pattern = pattern.replace(re.escape("${" + name + "}"), f"(?P<{name}>[^/]+)")
    regions = set(props["projection.region.values"].split(","))
    accounts = (set(props["projection.account.values"].split(","))
                if props["projection.account.type"] == "enum" else None)
    since, until = props["projection.date.range"].split(",")
    assert props["projection.date.format"] == "yyyy-MM-dd" and until == "NOW"
    unreachable, seen = [], 0
    for root, dirs, files in os.walk(dataset_dir):
        if not any(f.endswith(".parquet") for f in files):
            continue
        rel = os.path.relpath(root, dataset_dir).replace(os.sep, "/") + "/"
        seen += 1
        m = re.fullmatch(pattern, rel)
        ok = (m is not None and m["region"] in regions
              and (accounts is None or m["account"] in accounts)
              and since <= m["date"] <= today
              and dt.datetime.strptime(m["date"], "%Y-%m-%d").strftime("%Y-%m-%d") == m["date"])
        if not ok:
            unreachable.append(rel)
    return {"partition_dirs": seen, "unreachable": unreachable}


def non_null_counts(fetch_one, table, columns, quote):
    counts = fetch_one("SELECT " + ", ".join(f"count({quote}{c}{quote})" for c in columns) + f" FROM {table}")
    return dict(zip(columns, counts))


def run_spark(ddl_text, archive, work, params):
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]").appName("parquetrail-ddl-proof")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.warehouse.dir", os.path.join(work, "warehouse"))
        # An embedded Derby metastore in the work dir: Hive settings need the spark.hadoop. prefix.
        .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={os.path.join(work, 'metastore_db')};create=true")
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={work}")
        .enableHiveSupport()
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    out = {"statements": 0, "partitions": {}, "projection": {}, "types": {}, "non_null": {}, "answers": {}}
    for statement in statements(ddl_text):
        spark.sql(statement)
        out["statements"] += 1
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    for dataset in ("events", "insights"):
        table = f"{DATABASE}.{dataset}"
        props = {r[0]: r[1] for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()}
        out["partitions"][dataset] = len(spark.sql(f"SHOW PARTITIONS {table}").collect())
        out["projection"][dataset] = projection_check(props, os.path.join(archive, dataset), today)
        out["types"][dataset] = {f.name: f.dataType.simpleString() for f in spark.table(table).schema.fields}
        # Every column read with the declared types: non-null counts, compared with DuckDB's.
        out["non_null"][dataset] = non_null_counts(
            lambda sql: spark.sql(sql).collect()[0], table, [f.name for f in spark.table(table).schema.fields], "`")
    for name, sql in queries(params, "spark").items():
        sql = sql.format(events=f"{DATABASE}.events", logs=f"{DATABASE}.cloudtrail_logs")
        out["answers"][name] = normalize(tuple(r) for r in spark.sql(sql).collect())
    spark.stop()
    return out


def run_duckdb(archive, params):
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    src = (f"read_parquet('{archive}/events/**/*.parquet', hive_partitioning = true, "
           "hive_types_autocast = false)")
    con.execute(f"CREATE VIEW events AS SELECT * FROM {src}")
    columns = [r[0] for r in con.execute("DESCRIBE events").fetchall()]
    non_null = non_null_counts(lambda sql: con.execute(sql).fetchone(), "events", columns, '"')
    con.execute("""CREATE VIEW cloudtrail_logs AS
                   SELECT *, replace("date", '-', '/') AS "timestamp" FROM events""")
    answers = {}
    for name, sql in queries(params, "duckdb").items():
        answers[name] = normalize(con.execute(sql.format(events="events", logs="cloudtrail_logs")).fetchall())
    return {"answers": answers, "non_null": {"events": non_null}}


def main():
    ddl_file, trail_dir, archive, work = sys.argv[1:5]
    records = input_records(trail_dir)
    params = choose_params(records)
    result = {
        "input_records": len(records),
        "params": {k: str(v) for k, v in params.items()},
        "expected": expected_answers(records, params),
        "duckdb": run_duckdb(archive, params),
        "spark": run_spark(open(ddl_file).read(), archive, work, params),
    }
    json.dump(result, sys.stdout, default=str)


if __name__ == "__main__":
    main()
