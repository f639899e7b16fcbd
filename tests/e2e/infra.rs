//! The deployable template, `infra/template.yaml`, against the code it deploys: its Glue tables
//! must be the tables `parquetrail ddl` prints (the writer's columns and types in order, the
//! writer's partition layout, the same projection, the same manifest location and symlink input
//! format), the function must accept its environment (an unknown `PARQUETRAIL_*` name stops it at
//! start-up) and be allowed what manifests and compaction need, and its queue must outlast it.
//!
//! A template that drifts from the writer deploys fine and then fails every Athena query with a
//! type mismatch, so the drift is caught here, offline. The few intrinsic functions the checked
//! values use are evaluated with the parameters' defaults (or given values).
//!
//! The template is read with `serde_norway`, the maintained fork of `serde_yaml` (which is no
//! longer maintained), because its `Value::Tagged` keeps CloudFormation's short-form functions
//! (`!Ref x`, `!If [c, a, b]`, `!Sub`, `!FindInMap`, nested or in block form) as a tag over the
//! parsed scalar, list or map, so they are evaluated as structure rather than as text. `saphyr`
//! keeps tags too, but the serde `Value` API is the one the workspace's JSON code already uses.

use std::collections::BTreeMap;
use std::path::Path;

use parquetrail_core::convert::Layout;
use parquetrail_core::ddl::{DdlOptions, Engine, MANIFESTS, ddl};
use parquetrail_core::partition::PartitionKey;
use parquetrail_core::schema::{hive_type, schema};
use parquetrail_lambda::config::{Config, VARIABLES};
use serde_norway::Value;

fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The node at a path of map keys; panics naming the path.
fn at<'v>(node: &'v Value, path: &[&str]) -> &'v Value {
    path.iter()
        .enumerate()
        .fold(node, |node, (i, key)| node.get(key).unwrap_or_else(|| panic!("template: no {}", path[..=i].join("."))))
}

/// A scalar as CloudFormation passes it on: numbers and booleans as their text.
fn text(node: &Value) -> String {
    match node {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("template: expected a scalar, found {other:?}"),
    }
}

fn entries(node: &Value) -> impl Iterator<Item = (&str, &Value)> {
    let map = node.as_mapping().unwrap_or_else(|| panic!("template: expected a map, found {node:?}"));
    map.iter().map(|(k, v)| (k.as_str().unwrap_or_else(|| panic!("template: key {k:?} is not a string")), v))
}

fn items(node: &Value) -> &[Value] {
    node.as_sequence().unwrap_or_else(|| panic!("template: expected a list, found {node:?}"))
}

/// The resources of a type: `(logical id, resource)`.
fn resources<'t>(template: &'t Value, kind: &str) -> impl Iterator<Item = (&'t str, &'t Value)> {
    entries(at(template, &["Resources"])).filter(move |(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
}

// ------------------------------------------------------------------------------------------------
// Evaluating the intrinsic functions the checked values use, with given parameter values.

struct Stack<'a> {
    template: &'a Value,
    parameters: BTreeMap<String, String>,
}

impl<'a> Stack<'a> {
    /// The parameters' defaults, some overridden.
    fn new(template: &'a Value, overrides: &[(&str, &str)]) -> Self {
        let mut parameters: BTreeMap<String, String> = entries(at(template, &["Parameters"]))
            .map(|(name, p)| (name.to_string(), p.get("Default").map(text).unwrap_or_default()))
            .collect();
        for (name, value) in overrides {
            assert!(parameters.contains_key(*name), "template has no parameter {name}");
            parameters.insert(name.to_string(), value.to_string());
        }
        Stack { template, parameters }
    }

    /// A value; None for `!Ref AWS::NoValue`. Resources stay as `${Name}`.
    fn resolve(&self, node: &Value) -> Option<String> {
        let Value::Tagged(call) = node else { return Some(text(node)) };
        let function = call.tag.to_string();
        match (function.as_str(), &call.value) {
            ("!Ref", Value::String(name)) if name == "AWS::NoValue" => None,
            ("!Ref", Value::String(name)) => {
                Some(self.parameters.get(name).cloned().unwrap_or_else(|| format!("${{{name}}}")))
            }
            ("!Sub", Value::String(body)) => Some(self.substitute(body)),
            ("!If", Value::Sequence(args)) => {
                let [condition, then, otherwise] = &args[..] else {
                    panic!("template: !If needs 3 arguments: {node:?}")
                };
                self.resolve(if self.condition(&text(condition)) { then } else { otherwise })
            }
            ("!Join", Value::Sequence(args)) => {
                let [separator, list] = &args[..] else { panic!("template: !Join needs 2 arguments: {node:?}") };
                let parts: Vec<String> = items(list).iter().filter_map(|part| self.resolve(part)).collect();
                Some(parts.join(&text(separator)))
            }
            ("!FindInMap", Value::Sequence(args)) => {
                let keys: Vec<String> = args.iter().map(|a| self.resolve(a).expect("!FindInMap key")).collect();
                let [map, key, field] = &keys[..] else { panic!("template: !FindInMap needs 3 arguments: {node:?}") };
                Some(text(at(self.template, &["Mappings", map, key, field])))
            }
            _ => panic!("template: function form not understood by this test: {node:?}"),
        }
    }

    fn substitute(&self, body: &str) -> String {
        let mut out = String::new();
        let mut rest = body;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').map(|e| start + e).expect("unclosed ${ in !Sub");
            let name = &rest[start + 2..end];
            match name.strip_prefix('!') {
                Some(literal) => out.push_str(&format!("${{{literal}}}")),
                None => out.push_str(self.parameters.get(name).map_or(&rest[start..=end], String::as_str)),
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn condition(&self, name: &str) -> bool {
        self.evaluate(at(self.template, &["Conditions", name]))
    }

    fn evaluate(&self, expr: &Value) -> bool {
        let Value::Tagged(call) = expr else { panic!("template: a condition is a function, found {expr:?}") };
        match (call.tag.to_string().as_str(), &call.value) {
            ("!Not", Value::Sequence(args)) if args.len() == 1 => !self.evaluate(&args[0]),
            ("!Equals", Value::Sequence(args)) if args.len() == 2 => self.resolve(&args[0]) == self.resolve(&args[1]),
            ("!Condition", Value::String(name)) => self.condition(name),
            _ => panic!("template: condition form not understood by this test: {expr:?}"),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// What the code says.

/// The Glue table whose `TableInput.Name` is `name`.
fn glue_table<'t>(template: &'t Value, name: &str) -> &'t Value {
    resources(template, "AWS::Glue::Table")
        .map(|(_, r)| at(r, &["Properties", "TableInput"]))
        .find(|t| t.get("Name").and_then(Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("template: no AWS::Glue::Table named {name}"))
}

/// `(name, type)` of each `- Name: … Type: …` item.
fn name_types(list: &Value) -> Vec<(String, String)> {
    items(list).iter().map(|c| (text(at(c, &["Name"])), text(at(c, &["Type"])))).collect()
}

/// `(name, type)` of each column, in order.
type Columns = Vec<(String, String)>;

/// The datasets the writer lays out: table name, directory name and the columns of its files.
fn datasets() -> [(&'static str, String, Columns); 3] {
    let layout = Layout::default();
    let events: Columns = schema().fields().iter().map(|f| (f.name().clone(), hive_type(f.data_type()))).collect();
    let digests: Columns = parquetrail_core::digest_table::schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), hive_type(f.data_type())))
        .collect();
    [
        ("events", layout.events, events.clone()),
        ("insights", layout.insights, events),
        ("digests", layout.digests, digests),
    ]
}

/// The writer's partition path with Athena's placeholders: `account=${account}/…/`.
fn partition_template() -> String {
    let sample = PartitionKey {
        account: "111122223333".into(),
        region: "us-east-1".into(),
        date: chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
    };
    let path = sample.path();
    assert_eq!(path, "account=111122223333/region=us-east-1/date=2024-03-01", "the writer's partition layout changed");
    path.replace("111122223333", "${account}").replace("us-east-1", "${region}").replace("2024-03-01", "${date}")
}

/// How one table of `parquetrail ddl`'s output is stored and found.
struct DdlTable {
    location: String,
    serde: String,
    input_format: String,
    output_format: String,
    properties: BTreeMap<String, String>,
}

/// The storage clauses and `TBLPROPERTIES` of one (Athena) table in `parquetrail ddl`'s output.
fn ddl_table(ddl: &str, database: &str, table: &str) -> DdlTable {
    let head = format!("CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table}` (");
    let start = ddl.find(&head).unwrap_or_else(|| panic!("ddl has no table {table}:\n{ddl}"));
    let statement = &ddl[start..start + ddl[start..].find(");\n").expect("statement end")];
    let clause = |prefix: &str| -> String {
        statement
            .lines()
            .find_map(|l| l.strip_prefix(prefix)?.strip_prefix('\'')?.strip_suffix('\''))
            .unwrap_or_else(|| panic!("ddl: {table} has no {prefix}'…' line:\n{statement}"))
            .to_string()
    };
    let properties = statement
        .split_once("TBLPROPERTIES (")
        .expect("TBLPROPERTIES")
        .1
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim().trim_end_matches(',').split_once("'='")?;
            Some((k.trim_start_matches('\'').to_string(), v.trim_end_matches('\'').to_string()))
        })
        .collect();
    DdlTable {
        location: clause("LOCATION "),
        serde: clause("ROW FORMAT SERDE "),
        input_format: clause("STORED AS INPUTFORMAT "),
        output_format: clause("OUTPUTFORMAT "),
        properties,
    }
}

// ------------------------------------------------------------------------------------------------
// The tests.

#[test]
fn glue_tables_have_the_writers_columns_and_partitions() {
    let template = template();
    let partitions: Vec<(String, String)> = partition_template()
        .split('/')
        .map(|part| (part.split('=').next().unwrap().to_string(), "string".to_string()))
        .collect();
    for (table, _, expected) in datasets() {
        let input = glue_table(&template, table);
        let columns = name_types(at(input, &["StorageDescriptor", "Columns"]));
        for (i, (want, got)) in expected.iter().zip(&columns).enumerate() {
            assert!(
                want == got,
                "{table}: column {i} is `{}` {} in infra/template.yaml, the writer has `{}` {}",
                got.0,
                got.1,
                want.0,
                want.1
            );
        }
        let missing: Vec<&str> = expected.iter().skip(columns.len()).map(|c| c.0.as_str()).collect();
        let extra: Vec<&str> = columns.iter().skip(expected.len()).map(|c| c.0.as_str()).collect();
        assert!(missing.is_empty(), "{table}: infra/template.yaml lacks the writer's columns {missing:?}");
        assert!(extra.is_empty(), "{table}: infra/template.yaml has columns the writer lacks: {extra:?}");
        assert_eq!(name_types(at(input, &["PartitionKeys"])), partitions, "{table}: partition keys");
        assert_eq!(text(at(input, &["Parameters", "classification"])), "parquet", "{table}");
        assert_eq!(text(at(input, &["TableType"])), "EXTERNAL_TABLE", "{table}");
    }
}

#[test]
fn glue_tables_project_partitions_as_parquetrail_ddl_does() {
    let template = template();
    let cases: [&[(&str, &str)]; 2] = [
        &[],
        &[
            ("Accounts", "111122223333,444455556666"),
            ("Regions", "eu-west-1,us-east-1"),
            ("Since", "2023-06-01"),
            ("ArchivePrefix", "lake/cloudtrail"),
            ("GlueDatabaseName", "trail_archive"),
        ],
    ];
    for overrides in cases {
        let stack = Stack::new(&template, overrides);
        let parameter = |name: &str| stack.parameters[name].clone();
        let list = |name: &str| -> Vec<String> {
            parameter(name).split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()
        };
        // With the Regions default, the DDL's own default (every region) must come out.
        let regions = if overrides.iter().any(|(k, _)| *k == "Regions") { list("Regions") } else { Vec::new() };
        let root = format!("s3://${{ArchiveBucket}}/{}", parameter("ArchivePrefix"));
        let database = parameter("GlueDatabaseName");
        let options = DdlOptions {
            engine: Engine::Athena,
            database: database.clone(),
            table_prefix: String::new(),
            location: root.clone(),
            accounts: list("Accounts"),
            regions,
            since: chrono::NaiveDate::parse_from_str(&parameter("Since"), "%Y-%m-%d").unwrap(),
        };
        let ddl = ddl(&options).unwrap();

        for (table, directory, _) in datasets() {
            let input = glue_table(&template, table);
            let printed = ddl_table(&ddl, &database, table);
            let want = &printed.properties;
            let mut got = BTreeMap::new();
            for (key, value) in entries(at(input, &["Parameters"])) {
                if let Some(v) = stack.resolve(value) {
                    got.insert(key.to_string(), v);
                }
            }
            got.remove("classification");
            got.remove("EXTERNAL");
            let keys: std::collections::BTreeSet<&String> = got.keys().chain(want.keys()).collect();
            for key in keys {
                assert!(
                    got.get(key) == want.get(key),
                    "{table} (parameters {overrides:?}): table property {key} is {:?} in infra/template.yaml, \
                     `parquetrail ddl` prints {:?}",
                    got.get(key),
                    want.get(key)
                );
            }

            // Stored and read as `parquetrail ddl` says: Parquet files found through manifests.
            let storage = at(input, &["StorageDescriptor"]);
            let formats = [
                ("InputFormat", &["InputFormat"][..], &printed.input_format),
                ("OutputFormat", &["OutputFormat"], &printed.output_format),
                ("SerDe", &["SerdeInfo", "SerializationLibrary"], &printed.serde),
            ];
            for (what, path, want) in formats {
                let got = text(at(storage, path));
                assert!(
                    &got == want,
                    "{table}: {what} is {got} in infra/template.yaml, `parquetrail ddl` prints {want}"
                );
            }
            assert!(printed.input_format.ends_with(".SymlinkTextInputFormat"), "{table}: read through manifests");
            assert!(printed.serde.ends_with(".ParquetHiveSerDe"), "{table}: the manifests list Parquet files");

            // Each partition's manifest directory: the writer's partition path below `manifests/`.
            let resolved_location = stack.resolve(at(storage, &["Location"])).unwrap();
            assert_eq!(resolved_location, printed.location, "{table}: location differs from `parquetrail ddl`");
            let manifests = format!("{root}/{MANIFESTS}/{directory}");
            assert_eq!(printed.location, format!("{manifests}/"), "{table}: location is not the dataset's manifests");
            assert_eq!(
                got["storage.location.template"],
                format!("{manifests}/{}/", partition_template()),
                "{table}: storage.location.template is not the writer's partition layout below its manifests"
            );
        }
        let variables = at(&template, &["Resources", "Function", "Properties", "Environment", "Variables"]);
        let destination = stack.resolve(at(variables, &["PARQUETRAIL_DESTINATION"]));
        assert_eq!(destination.unwrap(), root, "the function writes where the tables read");
    }
}

#[test]
fn function_starts_with_the_templates_configuration() {
    let template = template();
    let variables = at(&template, &["Resources", "Function", "Properties", "Environment", "Variables"]);
    for (name, _) in entries(variables) {
        assert!(
            VARIABLES.iter().any(|(known, _)| *known == name),
            "infra/template.yaml sets {name}, which the function does not know (crates/lambda/src/config.rs \
             VARIABLES): it would refuse to start"
        );
    }
    let cases: [&[(&str, &str)]; 2] = [
        &[],
        &[
            ("Compression", "zstd:9"),
            ("EventCategories", "management,data"),
            ("ReadWrite", "writeonly"),
            ("ExcludeEventSources", "kms.amazonaws.com,rdsdata.amazonaws.com"),
            ("Shaping", "noise,secrets"),
            ("FilesPerInvocation", "64"),
            ("ArchivePrefix", "lake/cloudtrail"),
        ],
    ];
    for overrides in cases {
        let stack = Stack::new(&template, overrides);
        let environment: Vec<(String, String)> = entries(variables)
            .filter_map(|(name, value)| Some((name.to_string(), stack.resolve(value)?)))
            .map(|(name, value)| (name, value.replace("${ArchiveBucket}", "archive-bucket")))
            .collect();
        let config = Config::from_vars(environment.clone())
            .unwrap_or_else(|e| panic!("the function refuses the template's environment {environment:?}: {e}"));
        let root = format!("s3://archive-bucket/{}", stack.parameters["ArchivePrefix"]);
        assert_eq!(config.destination.to_string(), root, "PARQUETRAIL_DESTINATION with {overrides:?}");
        assert!(config.json_logs, "JSON logs");
        let shaping = stack.parameters["Shaping"].split(',').filter(|s| !s.is_empty()).map(|s| format!("{s}@1"));
        assert_eq!(config.options.shaping.provenance(), shaping.collect::<Vec<_>>(), "PARQUETRAIL_SHAPING");
    }
}

/// The keys the trail `infra/trail.yaml` creates will write (its `LogFilesPrefix` output, then
/// CloudTrail's own layout below it) parse with the pipeline's `ObjectKey` as the account, Region,
/// delivery day and kind they are filed under, for an account and an organization trail, with
/// and without a key prefix. (The Python tests check the same keys against the bucket policy.)
#[test]
fn keys_the_created_trail_writes_parse_as_the_pipeline_expects() {
    use parquetrail_core::object_key::{KeyKind, ObjectKey};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/trail.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let trail: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let account = "111122223333";
    for (prefix, org) in [("", ""), ("a/b", ""), ("", "o-abc123defg"), ("logs/cloudtrail", "o-abc123defg")] {
        let stack = Stack::new(&trail, &[("KeyPrefix", prefix), ("OrganizationId", org)]);
        let root = stack
            .resolve(at(&trail, &["Outputs", "LogFilesPrefix", "Value"]))
            .expect("LogFilesPrefix")
            .replace("${AWS::AccountId}", account);
        // An organization trail files each member account under the organization ID.
        let root = if org.is_empty() { root } else { format!("{root}{account}/") };
        for (dir, infix, kind) in [
            ("CloudTrail", "CloudTrail", KeyKind::Log),
            ("CloudTrail-Digest", "CloudTrail-Digest", KeyKind::Digest),
            ("CloudTrail-Insight", "CloudTrail-Insight", KeyKind::Insight),
        ] {
            let key = format!(
                "{root}{dir}/eu-west-3/2024/03/01/{account}_{infix}_eu-west-3_20240301T1005Z_AbCdEf0123456789.json.gz"
            );
            let parsed = ObjectKey::parse(&key);
            assert_eq!(
                (parsed.kind, parsed.account, parsed.region, parsed.org_id),
                (kind, Some(account), Some("eu-west-3"), (!org.is_empty()).then_some(org)),
                "{key}"
            );
            assert_eq!(parsed.delivery_date, chrono::NaiveDate::from_ymd_opt(2024, 3, 1), "{key}");
            assert_eq!(parsed.prefix.unwrap_or_default(), prefix, "{key}");
        }
    }
}

/// `(actions, resources, s3:prefix condition)` of each `Allow` statement of the function's role,
/// resolved with the parameters' defaults (`!GetAtt X.Arn` as `${X.Arn}`).
fn role_grants(template: &Value, stack: &Stack) -> Vec<(Vec<String>, Vec<String>, Option<String>)> {
    let resolve = |node: &Value| -> String {
        match node {
            Value::Tagged(call) if call.tag == "GetAtt" => format!("${{{}}}", text(&call.value)),
            other => stack.resolve(other).expect("a resource"),
        }
    };
    let one_or_many = |node: &Value| -> Vec<String> {
        match node {
            Value::Sequence(list) => list.iter().map(resolve).collect(),
            other => vec![resolve(other)],
        }
    };
    let mut grants = Vec::new();
    for policy in items(at(template, &["Resources", "FunctionRole", "Properties", "Policies"])) {
        for statement in items(at(policy, &["PolicyDocument", "Statement"])) {
            if text(at(statement, &["Effect"])) != "Allow" {
                continue;
            }
            let prefix = statement
                .get("Condition")
                .and_then(|c| c.get("StringLike"))
                .and_then(|c| c.get("s3:prefix"))
                .and_then(|p| stack.resolve(p));
            grants.push((one_or_many(at(statement, &["Action"])), one_or_many(at(statement, &["Resource"])), prefix));
        }
    }
    grants
}

#[test]
fn function_may_update_manifests_and_compact_the_archive() {
    let template = template();
    for overrides in [&[][..], &[("ArchivePrefix", "lake/cloudtrail")]] {
        let stack = Stack::new(&template, overrides);
        let grants = role_grants(&template, &stack);
        let prefix = &stack.parameters["ArchivePrefix"];
        let archive = format!("${{ArchiveBucket.Arn}}/{prefix}/*");
        let allowed = |action: &str, resource: &str| {
            grants.iter().any(|(actions, resources, _)| {
                actions.iter().any(|a| a == action) && resources.iter().any(|r| r == resource)
            })
        };
        // Manifests and consumed lists are read, then replaced with conditional writes.
        for action in ["s3:GetObject", "s3:PutObject"] {
            assert!(allowed(action, &archive), "{overrides:?}: the function role lacks {action} on {archive}");
        }
        // Garbage collection deletes replaced data files, in every dataset.
        for (_, directory, _) in datasets() {
            let data = format!("${{ArchiveBucket.Arn}}/{prefix}/{directory}/*");
            assert!(
                allowed("s3:DeleteObject", &data) || allowed("s3:DeleteObject", &archive),
                "{overrides:?}: the function role lacks s3:DeleteObject on {data}"
            );
        }
        // Listing finds partitions and garbage, and makes a missing manifest a 404, not a 403.
        let listed = grants.iter().any(|(actions, resources, condition)| {
            actions.iter().any(|a| a == "s3:ListBucket")
                && resources.iter().any(|r| r == "${ArchiveBucket.Arn}")
                && condition.as_ref().is_none_or(|c| c == &format!("{prefix}/*"))
        });
        assert!(listed, "{overrides:?}: the function role cannot list {prefix}/ in the archive bucket");
    }

    // The schedule sends the event the function takes for a compaction run.
    let schedule = at(&template, &["Resources", "Compaction", "Properties", "Target"]);
    let input: serde_json::Value = serde_json::from_str(&text(at(schedule, &["Input"]))).expect("the input is JSON");
    assert_eq!(input["parquetrail"], "compact", "the schedule's input: {input}");
    match at(schedule, &["Arn"]) {
        Value::Tagged(call) if call.tag == "GetAtt" => assert_eq!(text(&call.value), "Function.Arn"),
        other => panic!("template: the schedule's target is not the function: {other:?}"),
    }
}

#[test]
fn insights_schedule_sends_a_command_the_function_takes_and_may_replace_metrics() {
    let template = template();
    let schedule = at(&template, &["Resources", "Insights", "Properties", "Target"]);
    let input: serde_json::Value = serde_json::from_str(&text(at(schedule, &["Input"]))).expect("the input is JSON");
    match parquetrail_lambda::handler::parse_command(&input) {
        Some(Ok(parquetrail_lambda::handler::Command::Insights(_))) => {}
        other => panic!("the Insights schedule's input {input} is not an insights command: {other:?}"),
    }
    let stack = Stack::new(&template, &[]);
    let grants = role_grants(&template, &stack);
    let prefix = &stack.parameters["ArchivePrefix"];
    let metrics = format!("${{ArchiveBucket.Arn}}/{prefix}/{}/*", parquetrail_ingest::insights::METRICS);
    let deletes = grants.iter().any(|(actions, resources, _)| {
        actions.iter().any(|a| a == "s3:DeleteObject") && resources.iter().any(|r| r == &metrics)
    });
    assert!(deletes, "the function role cannot replace metrics files under {metrics}");
}

#[test]
fn queue_outlasts_the_function_and_reports_partial_failures() {
    let template = template();
    let function = at(&template, &["Resources", "Function", "Properties"]);
    let (_, sqs) = entries(at(function, &["Events"]))
        .find(|(_, e)| e.get("Type").and_then(Value::as_str) == Some("SQS"))
        .expect("the function has an SQS event");
    let sqs = at(sqs, &["Properties"]);
    let window = at(sqs, &["MaximumBatchingWindowInSeconds"]).as_u64().expect("the batching window is a number");
    let responses: Vec<String> = items(at(sqs, &["FunctionResponseTypes"])).iter().map(text).collect();
    assert_eq!(responses, ["ReportBatchItemFailures"], "the SQS event's FunctionResponseTypes");
    // The queue the event reads: `!GetAtt Queue.Arn`.
    let source = match at(sqs, &["Queue"]) {
        Value::Tagged(call) if call.tag == "GetAtt" => text(&call.value),
        other => panic!("template: the SQS event's Queue is not `!GetAtt Name.Arn`: {other:?}"),
    };
    let queue = source.strip_suffix(".Arn").unwrap_or_else(|| panic!("template: the SQS event reads {source}"));
    let visibility = at(&template, &["Resources", queue, "Properties", "VisibilityTimeout"]);

    for timeout in items(at(&template, &["Parameters", "FunctionTimeout", "AllowedValues"])) {
        let timeout = timeout.as_u64().expect("FunctionTimeout values are numbers");
        let stack = Stack::new(&template, &[("FunctionTimeout", &timeout.to_string())]);
        let resolved = stack.resolve(at(function, &["Timeout"]));
        assert_eq!(resolved, Some(timeout.to_string()), "the function's Timeout is the FunctionTimeout parameter");
        let seconds: u64 = stack
            .resolve(visibility)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{queue}: VisibilityTimeout for a {timeout}s function is not a number"));
        assert!(
            seconds >= 6 * timeout + window,
            "{queue}: visibility timeout {seconds}s for a {timeout}s function: needs 6 × timeout + batching window"
        );
    }
}

#[test]
fn intrinsic_functions_evaluate_as_cloudformation_does() {
    let template: Value = serde_norway::from_str(
        "Parameters:\n  P: { Default: p }\n  Empty: { Type: String }\n  N: { Default: 60 }\n\
         Conditions:\n  HasP: !Not [!Equals [!Ref P, \"\"]]\n  NoP: !Not [!Condition HasP]\n\
         Mappings:\n  M: { \"60\": { Seconds: 370 } }\n\
         Values:\n  Ref: !Ref P\n  Sub: !Sub \"s3://${Bucket}/${P}/x=${!x}\"\n  Gone: !If [NoP, yes, !Ref AWS::NoValue]\n\
         \x20 Find: !FindInMap [M, !Ref N, Seconds]\n  Block: !If\n    - HasP\n    - !Ref Empty\n    - other\n\
         \x20 Join: !Join [\"\", [!Sub \"${P}/\", !If [NoP, x, !Ref AWS::NoValue], \"*\"]]\n",
    )
    .unwrap();
    let stack = Stack::new(&template, &[]);
    let value = |name: &str| stack.resolve(at(&template, &["Values", name]));
    assert_eq!(value("Ref").as_deref(), Some("p"));
    assert_eq!(value("Sub").as_deref(), Some("s3://${Bucket}/p/x=${x}"));
    assert_eq!(value("Gone"), None);
    assert_eq!(value("Find").as_deref(), Some("370"));
    assert_eq!(value("Block").as_deref(), Some(""));
    assert_eq!(value("Join").as_deref(), Some("p/*"));
    assert!(!Stack::new(&template, &[("P", "")]).condition("HasP"));
}
