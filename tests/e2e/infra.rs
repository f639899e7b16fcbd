//! The deployable template, `infra/template.yaml`, against the code it deploys: its Glue tables
//! must be the tables `parquetrail ddl` prints (the writer's columns and types in order, the
//! writer's partition layout, the same projection), the function must accept its environment
//! (an unknown `PARQUETRAIL_*` name stops it at start-up), and its queue must outlast it.
//!
//! A template that drifts from the writer deploys fine and then fails every Athena query with a
//! type mismatch, so the drift is caught here, offline. The template is read with a small parser
//! for the block YAML it is written in (maps, lists, scalars; flow values and intrinsic functions
//! kept as text), and the few intrinsic functions the tables use are evaluated with the
//! parameters' defaults.

use std::collections::BTreeMap;
use std::path::Path;

use parquetrail_core::convert::Layout;
use parquetrail_core::ddl::{DdlOptions, Engine, ddl};
use parquetrail_core::partition::PartitionKey;
use parquetrail_core::schema::{hive_type, schema};
use parquetrail_lambda::config::{Config, VARIABLES};

fn template() -> Node {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    parse(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

// ------------------------------------------------------------------------------------------------
// A parser for the block YAML of the template.

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// A plain or quoted scalar, a flow collection or an intrinsic function, as written (quotes
    /// of a plain quoted string removed).
    Scalar(String),
    Map(Vec<(String, Node)>),
    List(Vec<Node>),
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The node at a path of map keys; panics naming the path.
    fn at(&self, path: &[&str]) -> &Node {
        let mut node = self;
        for (i, key) in path.iter().enumerate() {
            node = node.get(key).unwrap_or_else(|| panic!("template: no {}", path[..=i].join(".")));
        }
        node
    }

    fn text(&self) -> &str {
        match self {
            Node::Scalar(s) => s,
            other => panic!("template: expected a scalar, found {other:?}"),
        }
    }

    fn entries(&self) -> &[(String, Node)] {
        match self {
            Node::Map(entries) => entries,
            other => panic!("template: expected a map, found {other:?}"),
        }
    }

    fn items(&self) -> &[Node] {
        match self {
            Node::List(items) => items,
            other => panic!("template: expected a list, found {other:?}"),
        }
    }
}

#[derive(Debug)]
struct Line {
    indent: usize,
    text: String,
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// `key: value` (value possibly empty); keys may be quoted.
fn split_key(text: &str) -> Option<(String, &str)> {
    let (key, value) = match text.split_once(": ") {
        Some((k, v)) => (k, v.trim()),
        None => (text.strip_suffix(':')?, ""),
    };
    Some((unquote(key.trim()).to_string(), value))
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

/// Drops a trailing ` # comment` outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev == ' ' => return line[..i].trim_end(),
            None => {}
        }
        prev = c;
    }
    line
}

fn lines(src: &str) -> Vec<Line> {
    let mut out = Vec::new();
    for raw in src.lines() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = raw.len() - trimmed.len();
        let text = strip_comment(trimmed).to_string();
        // `- key: value` opens a map item: split it into the item marker and the map's first line.
        if let Some(rest) = text.strip_prefix("- ")
            && !rest.starts_with(['!', '{', '[', '"', '\''])
            && split_key(rest).is_some()
        {
            out.push(Line { indent, text: "-".into() });
            out.push(Line { indent: indent + 2, text: rest.to_string() });
        } else {
            out.push(Line { indent, text });
        }
    }
    out
}

fn parse(src: &str) -> Node {
    let lines = lines(src);
    let mut i = 0;
    block(&lines, &mut i, 0)
}

fn block(lines: &[Line], i: &mut usize, indent: usize) -> Node {
    if *i < lines.len() && is_item(&lines[*i].text) { list(lines, i, indent) } else { map(lines, i, indent) }
}

/// A value written after `key:` or `-`: nested block, tagged block (`!If` + list), or scalar with
/// any more-indented continuation lines (folded block scalars, long flow values).
fn value(lines: &[Line], i: &mut usize, indent: usize, written: &str) -> Node {
    let next = lines.get(*i).filter(|l| l.indent > indent || (l.indent == indent && is_item(&l.text)));
    let opens_block = written.is_empty() || (written.starts_with('!') && !written.contains(' '));
    match next {
        Some(next) if opens_block && (next.indent > indent || written.is_empty()) => {
            let child = block(lines, i, next.indent);
            if written.is_empty() { child } else { Node::Map(vec![(written.to_string(), child)]) }
        }
        _ => {
            let mut text = match written {
                ">-" | ">" | "|" | "|-" => String::new(),
                w => w.to_string(),
            };
            while let Some(line) = lines.get(*i).filter(|l| l.indent > indent) {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(&line.text);
                *i += 1;
            }
            Node::Scalar(if text.starts_with('!') { text } else { unquote(&text).to_string() })
        }
    }
}

fn map(lines: &[Line], i: &mut usize, indent: usize) -> Node {
    let mut entries = Vec::new();
    while let Some(line) = lines.get(*i).filter(|l| l.indent == indent && !is_item(&l.text)) {
        let (key, written) = split_key(&line.text).unwrap_or_else(|| panic!("template: not `key: value`: {line:?}"));
        *i += 1;
        entries.push((key, value(lines, i, indent, written)));
    }
    Node::Map(entries)
}

fn list(lines: &[Line], i: &mut usize, indent: usize) -> Node {
    let mut items = Vec::new();
    while let Some(line) = lines.get(*i).filter(|l| l.indent == indent && is_item(&l.text)) {
        let written = line.text[1..].trim();
        *i += 1;
        items.push(value(lines, i, indent, written));
    }
    Node::List(items)
}

// ------------------------------------------------------------------------------------------------
// Evaluating the intrinsic functions the tables use, with given parameter values.

struct Stack<'a> {
    template: &'a Node,
    parameters: BTreeMap<String, String>,
}

impl<'a> Stack<'a> {
    /// The parameters' defaults, some overridden.
    fn new(template: &'a Node, overrides: &[(&str, &str)]) -> Self {
        let mut parameters = BTreeMap::new();
        for (name, p) in template.at(&["Parameters"]).entries() {
            let default = p.get("Default").map(|d| d.text().to_string()).unwrap_or_default();
            parameters.insert(name.clone(), default);
        }
        for (name, value) in overrides {
            assert!(parameters.contains_key(*name), "template has no parameter {name}");
            parameters.insert(name.to_string(), value.to_string());
        }
        Stack { template, parameters }
    }

    /// A scalar's value; None for `!Ref AWS::NoValue`. Resources stay as `${Name}`.
    fn resolve(&self, written: &str) -> Option<String> {
        if written == "!Ref AWS::NoValue" {
            None
        } else if let Some(name) = written.strip_prefix("!Ref ") {
            Some(self.parameters.get(name).cloned().unwrap_or_else(|| format!("${{{name}}}")))
        } else if let Some(body) = written.strip_prefix("!Sub ") {
            Some(self.substitute(unquote(body)))
        } else if let Some(args) = call(written, "!If") {
            let [condition, then, otherwise] = args[..] else { panic!("template: !If needs 3 arguments: {written}") };
            self.resolve(if self.condition(condition) { then } else { otherwise })
        } else {
            Some(unquote(written).to_string())
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
                None => match self.parameters.get(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&rest[start..=end]),
                },
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn condition(&self, name: &str) -> bool {
        let expr = self.template.at(&["Conditions", name]).text();
        self.evaluate(expr)
    }

    fn evaluate(&self, expr: &str) -> bool {
        if let Some(args) = call(expr, "!Not") {
            !self.evaluate(args[0])
        } else if let Some(args) = call(expr, "!Equals") {
            self.resolve(args[0]) == self.resolve(args[1])
        } else if let Some(name) = expr.strip_prefix("!Condition ") {
            self.condition(name)
        } else {
            panic!("template: condition form not understood by this test: {expr}")
        }
    }
}

/// The arguments of `!Name [a, b, …]`, split at top-level commas.
fn call<'s>(written: &'s str, name: &str) -> Option<Vec<&'s str>> {
    let inner = written.strip_prefix(name)?.trim().strip_prefix('[')?.strip_suffix(']')?;
    let (mut args, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                args.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    args.push(inner[start..].trim());
    Some(args)
}

// ------------------------------------------------------------------------------------------------
// What the code says.

/// The Glue table whose `TableInput.Name` is `name`.
fn glue_table<'t>(template: &'t Node, name: &str) -> &'t Node {
    template
        .at(&["Resources"])
        .entries()
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r.get("Type").map(Node::text) == Some("AWS::Glue::Table"))
        .map(|r| r.at(&["Properties", "TableInput"]))
        .find(|t| t.get("Name").map(Node::text) == Some(name))
        .unwrap_or_else(|| panic!("template: no AWS::Glue::Table named {name}"))
}

/// `(name, type)` of each `- Name: … Type: …` item.
fn name_types(list: &Node) -> Vec<(String, String)> {
    list.items().iter().map(|c| (c.at(&["Name"]).text().to_string(), c.at(&["Type"]).text().to_string())).collect()
}

/// The datasets the writer lays out, with their directory names.
fn datasets() -> [(&'static str, String); 2] {
    let layout = Layout::default();
    [("events", layout.events), ("insights", layout.insights)]
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

/// The `LOCATION` and `TBLPROPERTIES` of one table in `parquetrail ddl`'s output.
fn ddl_table(ddl: &str, database: &str, table: &str) -> (String, BTreeMap<String, String>) {
    let head = format!("CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table}` (");
    let start = ddl.find(&head).unwrap_or_else(|| panic!("ddl has no table {table}:\n{ddl}"));
    let statement = &ddl[start..start + ddl[start..].find(");\n").expect("statement end")];
    let location =
        statement.lines().find_map(|l| l.strip_prefix("LOCATION '")?.strip_suffix('\'')).expect("LOCATION").to_string();
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
    (location, properties)
}

// ------------------------------------------------------------------------------------------------
// The tests.

#[test]
fn glue_tables_have_the_writers_columns_and_partitions() {
    let template = template();
    let schema = schema();
    let expected: Vec<(String, String)> =
        schema.fields().iter().map(|f| (f.name().clone(), hive_type(f.data_type()))).collect();
    let partitions: Vec<(String, String)> = partition_template()
        .split('/')
        .map(|part| (part.split('=').next().unwrap().to_string(), "string".to_string()))
        .collect();
    for (table, _) in datasets() {
        let input = glue_table(&template, table);
        let columns = name_types(input.at(&["StorageDescriptor", "Columns"]));
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
        assert_eq!(name_types(input.at(&["PartitionKeys"])), partitions, "{table}: partition keys");

        let storage = input.at(&["StorageDescriptor"]);
        let parquet = "org.apache.hadoop.hive.ql.io.parquet";
        assert_eq!(storage.at(&["InputFormat"]).text(), format!("{parquet}.MapredParquetInputFormat"), "{table}");
        assert_eq!(storage.at(&["OutputFormat"]).text(), format!("{parquet}.MapredParquetOutputFormat"), "{table}");
        assert_eq!(
            storage.at(&["SerdeInfo", "SerializationLibrary"]).text(),
            format!("{parquet}.serde.ParquetHiveSerDe"),
            "{table}"
        );
        assert_eq!(input.at(&["Parameters", "classification"]).text(), "parquet", "{table}");
        assert_eq!(input.at(&["TableType"]).text(), "EXTERNAL_TABLE", "{table}");
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

        for (table, directory) in datasets() {
            let input = glue_table(&template, table);
            let (location, want) = ddl_table(&ddl, &database, table);
            let mut got = BTreeMap::new();
            for (key, value) in input.at(&["Parameters"]).entries() {
                if let Some(v) = stack.resolve(value.text()) {
                    got.insert(key.clone(), v);
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

            let resolved_location = stack.resolve(input.at(&["StorageDescriptor", "Location"]).text()).unwrap();
            assert_eq!(resolved_location, location, "{table}: location differs from `parquetrail ddl`");
            assert_eq!(location, format!("{root}/{directory}/"), "{table}: location is not the writer's dataset");
            assert_eq!(
                got["storage.location.template"],
                format!("{root}/{directory}/{}/", partition_template()),
                "{table}: storage.location.template is not the writer's partition layout"
            );
        }
        let variables = template.at(&["Resources", "Function", "Properties", "Environment", "Variables"]);
        let destination = stack.resolve(variables.at(&["PARQUETRAIL_DESTINATION"]).text());
        assert_eq!(destination.unwrap(), root, "the function writes where the tables read");
    }
}

#[test]
fn function_starts_with_the_templates_configuration() {
    let template = template();
    let variables = template.at(&["Resources", "Function", "Properties", "Environment", "Variables"]);
    for (name, _) in variables.entries() {
        assert!(
            VARIABLES.iter().any(|(known, _)| known == name),
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
            ("FilesPerInvocation", "64"),
            ("ArchivePrefix", "lake/cloudtrail"),
        ],
    ];
    for overrides in cases {
        let stack = Stack::new(&template, overrides);
        let environment: Vec<(String, String)> = variables
            .entries()
            .iter()
            .filter_map(|(name, value)| Some((name.clone(), stack.resolve(value.text())?)))
            .map(|(name, value)| (name, value.replace("${ArchiveBucket}", "archive-bucket")))
            .collect();
        let config = Config::from_vars(environment.clone())
            .unwrap_or_else(|e| panic!("the function refuses the template's environment {environment:?}: {e}"));
        let root = format!("s3://archive-bucket/{}", stack.parameters["ArchivePrefix"]);
        assert_eq!(config.destination.to_string(), root, "PARQUETRAIL_DESTINATION with {overrides:?}");
        assert!(config.json_logs, "JSON logs");
    }
}

#[test]
fn queue_outlasts_the_function_and_reports_partial_failures() {
    let template = template();
    let timeouts = template.at(&["Parameters", "FunctionTimeout", "AllowedValues"]).text();
    let timeouts: Vec<u64> = timeouts
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|t| t.trim().parse().expect("FunctionTimeout values are numbers"))
        .collect();
    let events = template.at(&["Resources", "Function", "Properties", "Events"]);
    let (_, sqs) = events
        .entries()
        .iter()
        .find(|(_, e)| e.get("Type").map(Node::text) == Some("SQS"))
        .expect("the function has an SQS event");
    let window: u64 = sqs.at(&["Properties", "MaximumBatchingWindowInSeconds"]).text().parse().unwrap();
    assert_eq!(sqs.at(&["Properties", "FunctionResponseTypes"]).text(), "[ReportBatchItemFailures]");
    for timeout in timeouts {
        let entry = template.at(&["Mappings", "VisibilityTimeout", &timeout.to_string()]).text();
        let seconds: u64 = entry
            .trim_matches(|c| c == '{' || c == '}')
            .trim()
            .strip_prefix("Seconds:")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("VisibilityTimeout {timeout}: not {{ Seconds: N }}: {entry}"));
        assert!(
            seconds >= 6 * timeout + window,
            "visibility timeout {seconds}s for a {timeout}s function: needs 6 × timeout + batching window"
        );
    }
}

#[test]
fn parser_reads_the_forms_the_template_uses() {
    let node = parse(
        "A:\n  B: plain # comment\n  C: \"quoted # not a comment\"\n  D: >-\n    folded\n    text\n  E:\n    - Name: x\n      Type: struct<a:string,b:int>\n    - !If\n      - Cond\n      - y\n  F: !If [Has, !Ref P, !Ref AWS::NoValue]\n",
    );
    assert_eq!(node.at(&["A", "B"]).text(), "plain");
    assert_eq!(node.at(&["A", "C"]).text(), "quoted # not a comment");
    assert_eq!(node.at(&["A", "D"]).text(), "folded text");
    assert_eq!(
        name_types(&Node::List(node.at(&["A", "E"]).items()[..1].to_vec())),
        [("x".to_string(), "struct<a:string,b:int>".to_string())]
    );
    assert_eq!(node.at(&["A", "E"]).items()[1].at(&["!If"]).items().len(), 2);
    assert_eq!(call(node.at(&["A", "F"]).text(), "!If"), Some(vec!["Has", "!Ref P", "!Ref AWS::NoValue"]));
}
