//! `parquetrail ddl` proven on real engines: the generated Spark DDL runs in Apache Spark SQL with
//! Hive support over an archive parquetrail wrote, and typical audit queries answer the same on
//! Spark, on DuckDB (`hive_partitioning`) and from the input log files themselves.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use parquetrail_core::convert::{Dataset, Options, convert};
use parquetrail_core::ddl::{ALL_REGIONS, DdlOptions, Engine, ddl};
use parquetrail_core::schema::{hive_type, schema};
use parquetrail_core::sink::MemorySink;
use parquetrail_synth::{TreeOptions, generate_files};
use serde_json::Value;

use crate::support::*;

/// A Python with duckdb, pyarrow and pyspark, and a Java for Spark; or why there is none.
fn spark_python(test: &str) -> Option<String> {
    let python = python(test)?;
    let pyspark = Command::new(&python).args(["-c", "import pyspark"]).output().is_ok_and(|o| o.status.success());
    let java = Command::new("java").arg("-version").output().is_ok_and(|o| o.status.success());
    if pyspark && java {
        return Some(python);
    }
    let why = if pyspark {
        "no `java` on PATH (Spark needs Java 17+)".to_string()
    } else {
        format!("{python} cannot import pyspark (pip install -r tests/readers/requirements-spark.txt)")
    };
    assert!(!on_ci(), "{test}: {why}");
    not_run(test, &why);
    None
}

/// Writes `key`'s bytes under `dir` as the delivery tree the queries' expectations are read from.
fn deliver(dir: &Path, key: &str, gz: &[u8]) {
    let path = dir.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, gz).unwrap();
}

#[test]
fn spark_runs_the_generated_ddl_and_audit_queries_match_the_input_and_duckdb() {
    let test = "spark_runs_the_generated_ddl_and_audit_queries_match_the_input_and_duckdb";
    let Some(python) = spark_python(test) else { return };
    let work = tempfile::tempdir().unwrap();
    let (trail, archive, scratch) = (work.path().join("trail"), work.path().join("archive"), work.path().join("spark"));
    std::fs::create_dir_all(&scratch).unwrap();

    // The input: a synthetic organization trail, plus every cleanly converting file of the
    // shared corpus when it is there (real ConsoleLogin, root and IAM records).
    let sink = MemorySink::default();
    let mut partitions: [BTreeSet<String>; 2] = Default::default();
    let (mut event_rows, mut corpus_files) = (0, 0);
    let mut add = |key: &str, gz: &[u8], must_be_clean: bool| -> bool {
        let probe = MemorySink::default();
        let report = convert(key, gz, &probe, &Options::default()).unwrap();
        let clean = report.skipped.is_none() && report.failure.is_none() && report.quarantined == 0 && report.rows > 0;
        assert!(clean || !must_be_clean, "{key}: {report:?}");
        if !clean {
            return false;
        }
        convert(key, gz, &sink, &Options::default()).unwrap();
        deliver(&trail, key, gz);
        for o in &report.outputs {
            let dataset = matches!(o.dataset, Dataset::Insights) as usize;
            partitions[dataset].insert(format!("account={}/region={}/date={}", o.account, o.region, o.date));
            if dataset == 0 {
                event_rows += o.rows;
            }
        }
        true
    };
    let tree = TreeOptions {
        seed: 11,
        target_json_bytes: 2_000_000,
        org_id: Some("o-audit12345".into()),
        ..TreeOptions::default()
    };
    for file in generate_files(&tree) {
        add(&file.key, &file.gz, true);
    }
    match corpus(test) {
        Some(dir) => {
            for (key, path) in files_under(&dir) {
                corpus_files += add(&format!("corpus/{key}"), &std::fs::read(path).unwrap(), false) as usize;
            }
            assert!(corpus_files > 0, "the corpus has log files that convert cleanly");
        }
        None => eprintln!("{test}: synthetic input only (the shared corpus is absent)"),
    }
    materialize(&sink, &archive);

    // The DDL exactly as `parquetrail ddl --engine spark` prints it, projected from the oldest day.
    let since = partitions.iter().flatten().map(|p| p.rsplit("date=").next().unwrap().to_string()).min().unwrap();
    let options = DdlOptions {
        engine: Engine::Spark,
        database: "cloudtrail".into(),
        table_prefix: String::new(),
        location: format!("file:{}", archive.display()),
        accounts: vec![],
        regions: vec![],
        since: chrono::NaiveDate::parse_from_str(&since, "%Y-%m-%d").unwrap(),
    };
    let ddl_file = work.path().join("tables.sql");
    std::fs::write(&ddl_file, ddl(&options).unwrap()).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("readers/audit_queries.py");
    let out = Command::new(&python).arg(script).args([&ddl_file, &trail, &archive, &scratch]).output().unwrap();
    assert!(out.status.success(), "audit_queries.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    let spark = &seen["spark"];

    // Every statement ran: SET, database, three tables with their MSCK REPAIR, the view.
    assert_eq!(spark["statements"], 9, "{}", spark);
    for (i, dataset) in ["events", "insights"].iter().enumerate() {
        // Spark registered every partition the writer made, and Athena's projection reaches each.
        assert_eq!(spark["partitions"][dataset], partitions[i].len(), "{dataset} partitions");
        assert_eq!(spark["projection"][dataset]["partition_dirs"], partitions[i].len(), "{dataset}");
        // Except records from outside every region CloudTrail has (the corpus has documentation
        // samples with placeholder values): Athena cannot see those, and the check names them.
        let unreachable: BTreeSet<String> = spark["projection"][dataset]["unreachable"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().trim_end_matches('/').to_string())
            .collect();
        let foreign: BTreeSet<String> = partitions[i]
            .iter()
            .filter(|p| !ALL_REGIONS.iter().any(|r| p.contains(&format!("/region={r}/"))))
            .cloned()
            .collect();
        assert_eq!(unreachable, foreign, "{dataset}: partitions the projection cannot reach");
        // The table's types, as Spark's catalog holds them, are the writer's schema.
        for field in schema().fields() {
            let declared = spark["types"][dataset][field.name()].as_str().unwrap_or("missing");
            assert_eq!(declared, hive_type(field.data_type()), "{dataset}.{}", field.name());
        }
    }
    // Every column is readable with the declared types, and both engines see the same values.
    let counts = &spark["non_null"]["events"];
    assert_eq!(counts, &seen["duckdb"]["non_null"]["events"], "non-null counts per column");
    assert_eq!(counts["source_key"], event_rows, "source_key is set on every row");

    let expected = seen["expected"].as_object().unwrap();
    assert_eq!(expected.len(), 8, "{:?}", expected.keys());
    for (query, want) in expected {
        let rows = want.as_array().unwrap();
        assert!(!rows.is_empty(), "{query}: the input has cases for it ({})", seen["params"]);
        assert_eq!(&spark["answers"][query], want, "{query} on Spark ({})", seen["params"]);
        assert_eq!(&seen["duckdb"]["answers"][query], want, "{query} on DuckDB ({})", seen["params"]);
    }
    assert_eq!(expected["total_events"], serde_json::json!([[event_rows]]));
    let in_range = expected["time_range"].as_array().unwrap().len() as u64;
    assert!(in_range < event_rows, "the time range selects, it does not return everything");
    eprintln!(
        "{test}: {} input records ({corpus_files} corpus files), {event_rows} event rows; 8 queries agree",
        seen["input_records"]
    );
}
