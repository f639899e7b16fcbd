//! The SQL that puts tables over an archive: Athena (`CREATE EXTERNAL TABLE` with partition
//! projection) and Spark SQL with Hive support (partitions registered by `MSCK REPAIR TABLE`,
//! since Spark has no projection).
//!
//! Column types come from [`schema`], the writer's own schema, so a table never disagrees with
//! its files (Athena fails a query on a type mismatch). Both engines also get a view named like
//! AWS's documented table, `cloudtrail_logs`, that adds the official `timestamp` partition
//! column (`yyyy/MM/dd`), so saved queries written for the official table run unchanged.
//!
//! Athena tables read each partition through its manifest, `manifests/<dataset>/account=…/
//! region=…/date=…/symlink.txt` (Hive's `SymlinkTextInputFormat`: the partition location holds a
//! list of Parquet files, read with the Parquet SerDe), not by listing the data directory. The
//! manifest is the partition's one source of truth: writers add to it, compaction swaps many
//! small files for a few large ones in one write, and a query reads one version of it, so it sees
//! every record once, during a compaction too. Spark tables stay directory tables (see
//! [`Engine::Spark`]). The design and its failure analysis: `docs/COMPACTION.md`.

use crate::schema::{hive_type, schema};

/// Where the manifests live, below the archive root: `manifests/<dataset>/<partition>/symlink.txt`.
/// The writers' layout (`convert::Layout`) names the datasets' directories; this is the one
/// directory it does not name yet.
pub const MANIFESTS: &str = "manifests";

/// The SerDe of every table: the files are Parquet whichever way they are found.
pub const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
/// Athena's input format for tables whose partition locations hold lists of files.
pub const SYMLINK_INPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat";
/// The output format Hive pairs with [`SYMLINK_INPUT_FORMAT`]; Athena never writes through it.
pub const SYMLINK_OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";

/// Every commercial and GovCloud region CloudTrail delivers from, for the `region` projection.
pub const ALL_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "us-gov-east-1",
    "us-gov-west-1",
];

/// Which engine the statements are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// Amazon Athena (Trino and Hive DDL): partitions found by projection, each read through its
    /// manifest ([`MANIFESTS`]), so a query never sees a partition halfway through a compaction.
    #[default]
    Athena,
    /// Apache Spark SQL with Hive support (EMR, Glue jobs, a laptop): partitions registered with
    /// `MSCK REPAIR TABLE`. The projection properties are kept, so the table documents them.
    ///
    /// These are directory tables (`STORED AS PARQUET` over `events/`, …), not manifest tables,
    /// because Spark cannot read Parquet through manifests. Given a `SymlinkTextInputFormat` table
    /// with the Parquet SerDe, Spark's own Parquet reader (the default for such tables) reads the
    /// manifests themselves as Parquet and fails, and Hive's reader hands the listed files to a
    /// text reader and returns no rows (Spark 4; only Presto, Trino and Athena read the targets
    /// with the table's SerDe). A directory table reads every file in the directory: from a
    /// compaction's manifest swap until garbage collection removes the small files it replaced (a
    /// later run, at least the grace period of 1 h after the swap), Spark counts their records
    /// twice. Run Spark jobs outside that window, or read the files the manifests list
    /// (`docs/COMPACTION.md`).
    Spark,
}

/// What `parquetrail ddl` generates: tables over the archive, found by partition projection
/// (no crawler, no `MSCK REPAIR`, no partition Lambda) on Athena.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdlOptions {
    pub engine: Engine,
    pub database: String,
    /// Table name prefix: tables are `<prefix>events`, `<prefix>insights`, `<prefix>digests` and
    /// the view `<prefix>cloudtrail_logs`.
    pub table_prefix: String,
    /// The archive's root, `s3://bucket/prefix`: the datasets (`events/`, `insights/`, `digests/`)
    /// and their manifests (`manifests/`) are below it. Spark also takes other schemes
    /// (`s3a://`, `file:/`, `hdfs://`).
    pub location: String,
    /// Accounts to enumerate; empty: `injected` (queries must then name the account).
    pub accounts: Vec<String>,
    /// Regions to enumerate; empty: [`ALL_REGIONS`].
    pub regions: Vec<String>,
    /// First date of the `date` projection, `YYYY-MM-DD`.
    pub since: chrono::NaiveDate,
}

/// The view adding the official table's `timestamp` partition column to the events table.
pub const OFFICIAL_VIEW: &str = "cloudtrail_logs";

/// An option the statements cannot be made with: the value, and what is expected instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DdlError {
    /// A database name or table prefix Athena would not keep as given.
    #[error("{what} {name:?}: use lowercase letters, digits and _ (Athena folds case)")]
    Identifier { what: &'static str, name: String },
    /// A location the engine cannot read, or one that would break out of its quoted literal.
    #[error("location {location:?}: expected {expected}")]
    Location { location: String, expected: &'static str },
    #[error("account {0:?}: expected an account id such as 123456789012")]
    Account(String),
    #[error("region {0:?}: expected a region such as us-east-1")]
    Region(String),
}

fn valid_identifier(what: &'static str, name: &str) -> Result<(), DdlError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok { Ok(()) } else { Err(DdlError::Identifier { what, name: name.to_string() }) }
}

fn valid_location(engine: Engine, location: &str) -> Result<(), DdlError> {
    let scheme_ok = match engine {
        Engine::Athena => location.starts_with("s3://") && location.len() > 5,
        Engine::Spark => {
            location.split_once("://").is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty())
                || location.starts_with("file:/")
        }
    };
    let expected = match engine {
        Engine::Athena => "s3://bucket[/prefix]",
        Engine::Spark => "a URI such as s3://bucket/prefix, s3a://bucket/prefix or file:/path",
    };
    if scheme_ok && !location.contains('\'') {
        Ok(())
    } else {
        Err(DdlError::Location { location: location.to_string(), expected })
    }
}

/// The statements for the archive, each ending in `;` and a newline: the database, one
/// `CREATE EXTERNAL TABLE` per dataset (`events`, `insights`, `digests`) and the [`OFFICIAL_VIEW`].
///
/// For Athena each table is a manifest table: `LOCATION '<root>/manifests/<dataset>/'` and a
/// `storage.location.template` naming each partition's manifest directory, read with
/// [`SYMLINK_INPUT_FORMAT`] and [`PARQUET_SERDE`]. For Spark each is a directory table over
/// `<root>/<dataset>/`.
pub fn ddl(options: &DdlOptions) -> Result<String, DdlError> {
    valid_identifier("database", &options.database)?;
    if !options.table_prefix.is_empty() {
        valid_identifier("table prefix", &options.table_prefix)?;
    }
    let location = options.location.trim_end_matches('/');
    valid_location(options.engine, location)?;
    for account in &options.accounts {
        if account.is_empty() || !account.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(DdlError::Account(account.clone()));
        }
    }
    for region in &options.regions {
        if region.is_empty() || !region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(DdlError::Region(region.clone()));
        }
    }
    let regions: Vec<&str> = if options.regions.is_empty() {
        ALL_REGIONS.to_vec()
    } else {
        options.regions.iter().map(String::as_str).collect()
    };
    let columns_of = |schema: &arrow_schema::Schema| -> String {
        let columns: Vec<String> =
            schema.fields().iter().map(|f| format!("  `{}` {}", f.name(), hive_type(f.data_type()))).collect();
        columns.join(",\n")
    };
    let events_columns = columns_of(&schema());
    let digests_columns = columns_of(&crate::digest_table::schema());
    let db = &options.database;
    let mut out = format!(
        "-- Generated by parquetrail {} from the archive's own schema; columns match the Parquet files exactly.\n{}\n\
         CREATE DATABASE IF NOT EXISTS `{db}`;\n",
        env!("CARGO_PKG_VERSION"),
        match options.engine {
            Engine::Athena =>
                "-- Partitions are found by projection: no crawler, no MSCK REPAIR, no partition Lambda.\n\
                 -- Each partition is read through its manifest (manifests/<dataset>/.../symlink.txt), the list\n\
                 -- of its live Parquet files: a query sees every record once, also while compaction runs.\n\
                 -- Replacing tables made by an older version (STORED AS PARQUET over the data directories)?\n\
                 -- DROP TABLE them first (external tables: the data stays); IF NOT EXISTS keeps old ones.\n",
            Engine::Spark => "-- Spark SQL with Hive support: partitions are registered by MSCK REPAIR TABLE.\n",
        },
    );
    if options.engine == Engine::Spark {
        // Spark substitutes `${name}` in SQL text (an unknown name becomes empty), which would
        // erase the template's placeholders.
        out.push_str("SET spark.sql.variable.substitute=false;\n");
    }
    for (dataset, columns) in
        [("events", &events_columns), ("insights", &events_columns), ("digests", &digests_columns)]
    {
        let table = format!("{}{dataset}", options.table_prefix);
        let account_projection = if options.accounts.is_empty() {
            "  'projection.account.type'='injected',\n".to_string()
        } else {
            format!(
                "  'projection.account.type'='enum',\n  'projection.account.values'='{}',\n",
                options.accounts.join(",")
            )
        };
        // Athena reads the manifests, Spark the data directories (see `Engine::Spark`).
        let (storage, root) = match options.engine {
            Engine::Athena => (
                format!(
                    "ROW FORMAT SERDE '{PARQUET_SERDE}'\n\
                     STORED AS INPUTFORMAT '{SYMLINK_INPUT_FORMAT}'\n\
                     OUTPUTFORMAT '{SYMLINK_OUTPUT_FORMAT}'"
                ),
                format!("{location}/{MANIFESTS}/{dataset}"),
            ),
            Engine::Spark => ("STORED AS PARQUET".to_string(), format!("{location}/{dataset}")),
        };
        out.push_str(&format!(
            "\nCREATE EXTERNAL TABLE IF NOT EXISTS `{db}`.`{table}` (\n{columns}\n)\n\
             PARTITIONED BY (`account` string, `region` string, `date` string)\n\
             {storage}\n\
             LOCATION '{root}/'\n\
             TBLPROPERTIES (\n\
             \x20 'projection.enabled'='true',\n\
             {account_projection}\
             \x20 'projection.region.type'='enum',\n\
             \x20 'projection.region.values'='{regions}',\n\
             \x20 'projection.date.type'='date',\n\
             \x20 'projection.date.format'='yyyy-MM-dd',\n\
             \x20 'projection.date.range'='{since}',\n\
             \x20 'projection.date.interval'='1',\n\
             \x20 'projection.date.interval.unit'='DAYS',\n\
             \x20 'storage.location.template'='{root}/account=${{account}}/region=${{region}}/date=${{date}}/'\n\
             );\n",
            regions = regions.join(","),
            since = format_args!("{},NOW", options.since.format("%Y-%m-%d")),
        ));
        if options.engine == Engine::Spark {
            out.push_str(&format!("MSCK REPAIR TABLE `{db}`.`{table}`;\n"));
        }
    }
    let view = format!("{}{OFFICIAL_VIEW}", options.table_prefix);
    let events = format!("{}events", options.table_prefix);
    // Athena runs views on Trino, which quotes identifiers with double quotes; Spark uses backticks.
    let q = |name: &str| match options.engine {
        Engine::Athena => format!("\"{name}\""),
        Engine::Spark => format!("`{name}`"),
    };
    out.push_str(&format!(
        "\n-- The official Athena CloudTrail table's names: every column of `{events}` plus its `timestamp`\n\
         -- partition (yyyy/MM/dd). Saved queries run unchanged; filter on `date` (yyyy-MM-dd) when you\n\
         -- can, the column Athena projects partitions from.\n\
         CREATE OR REPLACE VIEW {v} AS\n\
         SELECT *, replace({date}, '-', '/') AS {ts}\n\
         FROM {e};\n",
        v = format_args!("{}.{}", q(db), q(&view)),
        e = format_args!("{}.{}", q(db), q(&events)),
        date = q("date"),
        ts = q("timestamp"),
    ));
    Ok(out)
}

#[cfg(test)]
mod ddl_tests {
    use super::*;

    fn options() -> DdlOptions {
        DdlOptions {
            engine: Engine::Athena,
            database: "cloudtrail".into(),
            table_prefix: String::new(),
            location: "s3://archive-bucket/lake/".into(),
            accounts: vec![],
            regions: vec![],
            since: chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        }
    }

    #[test]
    fn ddl_has_every_column_with_its_exact_type_and_projection_matching_the_writer() {
        let ddl = ddl(&options()).unwrap();
        for f in schema().fields() {
            let line = format!("`{}` {}", f.name(), hive_type(f.data_type()));
            // Columns the digests table shares (`source_key`, `unmapped`) appear a third time.
            let shared =
                crate::digest_table::schema().field_with_name(f.name()).is_ok_and(|d| d.data_type() == f.data_type());
            assert_eq!(ddl.matches(&line).count(), 2 + usize::from(shared), "{line} in both tables");
        }
        for f in crate::digest_table::schema().fields() {
            let line = format!("`{}` {}", f.name(), hive_type(f.data_type()));
            assert!(ddl.contains(&line), "{line} in the digests table");
        }
        // The template is the writer's own partition path with placeholders, below the manifests.
        let sample = crate::partition::PartitionKey {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            date: chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
        };
        assert_eq!(sample.path(), "account=111122223333/region=us-east-1/date=2024-03-01");
        let layout = crate::convert::Layout::default();
        for dataset in [&layout.events, &layout.insights, &layout.digests] {
            let root = format!("s3://archive-bucket/lake/{MANIFESTS}/{dataset}");
            assert!(ddl.contains(&format!("LOCATION '{root}/'\n")), "{dataset}: location");
            let template = format!("{root}/account=${{account}}/region=${{region}}/date=${{date}}/");
            assert!(ddl.contains(&format!("'storage.location.template'='{template}'\n")), "{dataset}: template");
            // Never the data directory: Athena would read every file in it, compacted or not.
            assert!(!ddl.contains(&format!("'s3://archive-bucket/lake/{dataset}/")), "{dataset}");
        }
        // Every table is a manifest table whose targets are Parquet.
        let storage = "ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'\n\
                       STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'\n\
                       OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n\
                       LOCATION 's3://archive-bucket/lake/manifests/";
        assert_eq!(ddl.matches(storage).count(), 3, "three manifest tables:\n{ddl}");
        assert!(!ddl.contains("STORED AS PARQUET\n"), "no directory tables");
        assert!(ddl.contains("'projection.account.type'='injected'"));
        assert!(ddl.contains("us-gov-west-1") && ddl.contains("'projection.date.range'='2020-01-01,NOW'"));
        assert!(ddl.contains("PARTITIONED BY (`account` string, `region` string, `date` string)"));
        assert!(!ddl.contains("MSCK REPAIR TABLE"), "Athena projects partitions");
        assert!(ddl.contains(
            "CREATE OR REPLACE VIEW \"cloudtrail\".\"cloudtrail_logs\" AS\nSELECT *, replace(\"date\", '-', '/') AS \"timestamp\"\nFROM \"cloudtrail\".\"events\";"
        ));
        assert_eq!(ddl.matches(";\n").count(), 5, "database, three tables, view");
    }

    #[test]
    fn spark_registers_partitions_and_quotes_with_backticks() {
        let mut o = options();
        o.engine = Engine::Spark;
        o.location = "file:/tmp/archive".into();
        o.table_prefix = "t_".into();
        let ddl = ddl(&o).unwrap();
        // Directory tables: Spark cannot read Parquet through symlink manifests.
        for dataset in ["events", "insights", "digests"] {
            assert!(
                ddl.contains(&format!("STORED AS PARQUET\nLOCATION 'file:/tmp/archive/{dataset}/'\n")),
                "{dataset}"
            );
            assert!(ddl.contains(&format!(
                "'storage.location.template'='file:/tmp/archive/{dataset}/account=${{account}}/region=${{region}}/date=${{date}}/'"
            )));
        }
        assert_eq!(ddl.matches("STORED AS PARQUET\n").count(), 3);
        assert!(!ddl.contains("SymlinkTextInputFormat") && !ddl.contains(MANIFESTS), "no manifest tables");
        assert!(ddl.contains("SET spark.sql.variable.substitute=false;\n"), "keeps ${{account}} in the template");
        assert!(ddl.contains("MSCK REPAIR TABLE `cloudtrail`.`t_events`;\n"));
        assert!(ddl.contains("MSCK REPAIR TABLE `cloudtrail`.`t_insights`;\n"));
        assert!(ddl.contains("MSCK REPAIR TABLE `cloudtrail`.`t_digests`;\n"));
        assert_eq!(ddl.matches(";\n").count(), 9, "SET, database, three tables and their repairs, view");
        assert!(ddl.contains("CREATE OR REPLACE VIEW `cloudtrail`.`t_cloudtrail_logs` AS"));
        assert!(ddl.contains("replace(`date`, '-', '/') AS `timestamp`"));
        // Athena only takes S3; Spark takes any scheme but still no quotes.
        o.location = "s3a://bucket/lake".into();
        assert!(super::ddl(&o).is_ok());
        for bad in ["/no/scheme", "file:/it's"] {
            o.location = bad.into();
            assert!(super::ddl(&o).is_err(), "{bad}");
        }
        let mut athena = options();
        athena.location = "s3a://bucket/lake".into();
        assert!(super::ddl(&athena).is_err());
    }

    #[test]
    fn enumerated_accounts_and_regions_and_bad_input() {
        let mut o = options();
        o.accounts = vec!["111122223333".into(), "444455556666".into()];
        o.regions = vec!["eu-west-1".into()];
        o.table_prefix = "org_".into();
        let ddl = ddl(&o).unwrap();
        assert!(ddl.contains("'projection.account.values'='111122223333,444455556666'"));
        assert!(ddl.contains("'projection.region.values'='eu-west-1'"));
        assert!(ddl.contains("`cloudtrail`.`org_events`") && ddl.contains("`cloudtrail`.`org_insights`"));
        type Change = Box<dyn Fn(&mut DdlOptions)>;
        let bad: Vec<Change> = vec![
            Box::new(|o| o.database = "Bad-Name".into()),
            Box::new(|o| o.location = "/local/path".into()),
            Box::new(|o| o.location = "s3://b/it's".into()),
            Box::new(|o| o.accounts = vec!["1;DROP".into()]),
            Box::new(|o| o.regions = vec!["US EAST".into()]),
            Box::new(|o| o.table_prefix = "x-y".into()),
        ];
        for (i, change) in bad.iter().enumerate() {
            let mut o = options();
            change(&mut o);
            assert!(super::ddl(&o).is_err(), "case {i}: {o:?}");
        }
    }
}
