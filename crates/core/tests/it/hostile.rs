//! Generated envelopes, records and partition values — valid, truncated and hostile — through the
//! reader and the converter. Whatever the input: no panic, every record read is a row written, a
//! record quarantined or a record filtered, the rows are those the committed Parquet footers hold,
//! a file that fails writes no output, and every path the converter writes stays inside the
//! archive's layout. The case count bounds the time (about a second per hundred cases).
//!
//! A second property bounds memory: inputs built to make the converter hold a lot (one huge
//! record, thousands of partitions, millions of tiny bad records, deep nesting), of sizes drawn up
//! to far past the limits, all convert within one budget, measured by this binary's counting
//! allocator.

use std::io::Write;

use parquetrail_core::convert::{self, Options};
use parquetrail_core::sink::MemorySink;
use proptest::prelude::*;

/// One generated record: its JSON text, and what the generator knows of it.
#[derive(Debug, Clone)]
struct Record {
    json: String,
    /// An object with a valid time, a plain account ID and an ordinary Region: it must become a
    /// row (under the default filter, which keeps everything).
    placeable: bool,
    /// Not an object, or without any `eventTime`: it can never become a row.
    unplaceable: bool,
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn account() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        "[0-9]{12}".prop_map(|a| (a, true)),
        "\\PC{0,40}".prop_map(|a| (a, false)),
        Just(("../../etc".to_string(), false)),
        Just(("a/b=c%2F..".to_string(), false)),
        Just(("é".repeat(120), false)),
        Just((String::new(), false)),
    ]
}

fn region() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        "(us|eu|ap)-(east|west|central)-[1-3]".prop_map(|r| (r, true)),
        "\\PC{0,40}".prop_map(|r| (r, false)),
        Just(("é".repeat(43), false)),
        Just(("..".to_string(), false)),
        Just(("us-east-1/../../x".to_string(), false)),
    ]
}

fn event_time() -> impl Strategy<Value = (Option<String>, bool)> {
    prop_oneof![
        "2024-0[1-9]-[12][0-9]T[01][0-9]:[0-5][0-9]:[0-5][0-9]Z".prop_map(|t| (Some(t), true)),
        "\\PC{0,25}".prop_map(|t| (Some(t), false)),
        Just((Some("9999-12-31T23:59:59Z".to_string()), false)),
        Just((Some("2024-02-30T00:00:00Z".to_string()), false)),
        Just((None, false)),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    let object = (account(), region(), event_time(), "[a-f0-9-]{0,36}", any::<bool>(), "\\PC{0,30}").prop_map(
        |((acct, plain_acct), (reg, plain_reg), (time, valid_time), id, duplicate, extra)| {
            let mut fields = vec![r#""eventVersion":"1.08""#.to_string()];
            if let Some(t) = &time {
                fields.push(format!(r#""eventTime":{}"#, quoted(t)));
            }
            fields.push(format!(r#""awsRegion":{}"#, quoted(&reg)));
            fields.push(format!(r#""recipientAccountId":{}"#, quoted(&acct)));
            fields.push(format!(r#""eventID":{}"#, quoted(&id)));
            fields.push(format!(r#""requestParameters":{{"x":{}}}"#, quoted(&extra)));
            if duplicate {
                // JSON allows duplicate names; the last one wins.
                fields.push(format!(r#""eventID":{}"#, quoted(&format!("{id}-again"))));
            }
            Record {
                json: format!("{{{}}}", fields.join(",")),
                placeable: valid_time && plain_acct && plain_reg,
                unplaceable: time.is_none(),
            }
        },
    );
    let other = prop_oneof![
        Just("1".to_string()),
        Just("null".to_string()),
        Just("[]".to_string()),
        "\\PC{0,20}".prop_map(|s| quoted(&s)),
    ]
    .prop_map(|json| Record { json, placeable: false, unplaceable: true });
    prop_oneof![4 => object, 1 => other]
}

/// How the envelope reaches the converter.
#[derive(Debug, Clone)]
enum Wrapping {
    Plain,
    Gzip,
    /// Cut after this share (per mille) of its bytes.
    GzipCut(u16),
    PlainCut(u16),
    /// gzip(1) accepts NUL padding after the last member (tape blocks).
    GzipNulPadded(u8),
    /// Another gzip member follows the first.
    TwoMembers,
    /// Arbitrary bytes, as a buggy producer might upload.
    Garbage(Vec<u8>),
}

fn wrapping() -> impl Strategy<Value = Wrapping> {
    prop_oneof![
        3 => Just(Wrapping::Plain),
        3 => Just(Wrapping::Gzip),
        2 => (0u16..1000).prop_map(Wrapping::GzipCut),
        2 => (0u16..1000).prop_map(Wrapping::PlainCut),
        1 => (1u8..=255).prop_map(Wrapping::GzipNulPadded),
        1 => Just(Wrapping::TwoMembers),
        1 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(Wrapping::Garbage),
    ]
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn cut(bytes: &[u8], per_mille: u16) -> Vec<u8> {
    bytes[..bytes.len() * usize::from(per_mille) / 1000].to_vec()
}

/// The default layout's top directories: nothing may be written anywhere else.
const TOP: [&str; 4] = ["events", "insights", "digests", "quarantine"];

fn footer_rows(parquet: Vec<u8>) -> u64 {
    use parquet::file::reader::FileReader;
    let reader = parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(parquet)).unwrap();
    reader.metadata().file_metadata().num_rows() as u64
}

const KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T1000Z_prop.json.gz";

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_input_reconciles_and_stays_inside_the_archive(
        records in proptest::collection::vec(record(), 0..24),
        wrapping in wrapping(),
    ) {
        let _one_at_a_time = super::exclusive();
        let body = format!(r#"{{"Records":[{}]}}"#, records.iter().map(|r| r.json.as_str()).collect::<Vec<_>>().join(","));
        let whole = matches!(wrapping, Wrapping::Plain | Wrapping::Gzip | Wrapping::GzipNulPadded(_));
        let input = match &wrapping {
            Wrapping::Plain => body.clone().into_bytes(),
            Wrapping::Gzip => gzip(body.as_bytes()),
            Wrapping::GzipCut(p) => cut(&gzip(body.as_bytes()), *p),
            Wrapping::PlainCut(p) => cut(body.as_bytes(), *p),
            Wrapping::GzipNulPadded(n) => [gzip(body.as_bytes()), vec![0; usize::from(*n)]].concat(),
            Wrapping::TwoMembers => [gzip(body.as_bytes()), gzip(b"more")].concat(),
            Wrapping::Garbage(bytes) => bytes.clone(),
        };
        let sink = MemorySink::default();
        let report = convert::convert(KEY, input.as_slice(), &sink, &Options::default())
            .unwrap_or_else(|e| panic!("an error instead of a report: {e}"));

        prop_assert!(report.reconciles(), "{report:?}");
        for path in sink.paths() {
            let segments: Vec<&str> = path.split('/').collect();
            prop_assert!(TOP.contains(&segments[0]), "{path}");
            prop_assert!(segments.iter().all(|s| !s.is_empty() && *s != "." && *s != ".."), "{path}");
        }
        let files = sink.files();
        let mut rows = 0;
        for output in &report.outputs {
            let bytes = files.get(&output.path).cloned();
            prop_assert!(bytes.is_some(), "{} reported but not committed", output.path);
            let committed = footer_rows(bytes.unwrap());
            prop_assert_eq!(committed, output.rows, "{}", output.path);
            rows += committed;
        }
        prop_assert_eq!(rows, report.rows);
        if report.failure.is_some() {
            prop_assert!(report.outputs.is_empty(), "a failed file wrote outputs: {:?}", report.outputs);
            prop_assert!(!whole, "a whole envelope failed: {report:?}");
        }
        if whole {
            prop_assert_eq!(report.records, records.len() as u64, "{:?}", report);
            let placeable = records.iter().filter(|r| r.placeable).count() as u64;
            let unplaceable = records.iter().filter(|r| r.unplaceable).count() as u64;
            prop_assert!(report.rows >= placeable, "{report:?}");
            prop_assert!(report.quarantined >= unplaceable, "{report:?}");
        }
    }
}

/// An input built to cost memory, of a drawn size. Each would hold memory in proportion to its
/// size without the converter's [`Limits`](parquetrail_core::convert::Limits).
#[derive(Debug, Clone)]
enum Costly {
    /// One record carrying a string of this many MiB (plus ordinary records around it).
    HugeRecord(usize),
    /// Records of this many distinct accounts, each a partition of its own.
    ManyPartitions(usize),
    /// `{"Records":[1,1,1,…]}` with this many hundred thousand entries: each a quarantined record.
    QuarantineBomb(usize),
    /// A record nested this many thousand levels deep.
    DeepNesting(usize),
}

fn costly() -> impl Strategy<Value = Costly> {
    prop_oneof![
        (1usize..=24).prop_map(Costly::HugeRecord),
        (8usize..=3000).prop_map(Costly::ManyPartitions),
        (1usize..=20).prop_map(Costly::QuarantineBomb),
        (1usize..=200).prop_map(Costly::DeepNesting),
    ]
}

fn ordinary(account: &str, second: usize) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"2024-03-01T10:{:02}:{:02}Z","eventName":"PutObject","awsRegion":"us-east-1","recipientAccountId":"{account}","eventID":"e-{second}"}}"#,
        second / 60 % 60,
        second % 60
    )
}

fn costly_body(costly: &Costly) -> String {
    match costly {
        Costly::HugeRecord(mib) => format!(
            r#"{{"Records":[{},{{"eventTime":"2024-03-01T10:00:00Z","requestParameters":{{"s":"{}"}}}},{}]}}"#,
            ordinary("111122223333", 1),
            "a".repeat(mib << 20),
            ordinary("111122223333", 2)
        ),
        Costly::ManyPartitions(n) => {
            let records: Vec<String> = (0..*n).map(|i| ordinary(&format!("{:012}", 100_000_000_000 + i), i)).collect();
            format!(r#"{{"Records":[{}]}}"#, records.join(","))
        }
        Costly::QuarantineBomb(n) => format!(r#"{{"Records":[{}1]}}"#, "1,".repeat(n * 100_000)),
        Costly::DeepNesting(k) => format!(
            r#"{{"Records":[{{"eventTime":"2024-03-01T10:00:00Z","x":{}{}}},{}]}}"#,
            "[".repeat(k * 1000),
            "]".repeat(k * 1000),
            ordinary("111122223333", 3)
        ),
    }
}

/// What converting any of the inputs above may hold at once, with the limits below: a few
/// partitions' Parquet writers, a record buffer, the quarantine, inflate buffers. Measured: at
/// most 3.6 MiB over the inputs drawn (which inflate to 24 MiB and 3,000 partitions). With the
/// limits lifted, a 1 MiB record already costs 8.4 MiB and a 16 MiB one 128 MiB, so this fails.
const MEMORY_BUDGET: usize = 8 << 20;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn memory_does_not_depend_on_what_an_input_contains(costly in costly()) {
        let _one_at_a_time = super::exclusive();
        let input = gzip(costly_body(&costly).as_bytes());
        let options = Options {
            limits: convert::Limits {
                max_record_bytes: 1 << 20,
                max_partitions: 8,
                max_quarantine_bytes: 1 << 20,
                ..convert::Limits::default()
            },
            ..Options::default()
        };
        let sink = MemorySink::default();
        let (report, peak) = super::peak_while(|| convert::convert(KEY, input.as_slice(), &sink, &options));
        let report = report.unwrap_or_else(|e| panic!("an error instead of a report: {e}"));
        prop_assert!(report.reconciles(), "{report:?}");
        prop_assert!(
            peak <= MEMORY_BUDGET,
            "{costly:?} held {:.1} MiB at once (budget {} MiB): {report:?}",
            peak as f64 / f64::from(1 << 20),
            MEMORY_BUDGET >> 20
        );
        match costly {
            Costly::HugeRecord(_) => prop_assert_eq!((report.rows, report.quarantined), (2, 1), "{:?}", report),
            Costly::ManyPartitions(n) => {
                prop_assert_eq!(report.outputs.len(), 8);
                prop_assert_eq!((report.rows, report.quarantined), (8, n as u64 - 8));
            }
            Costly::QuarantineBomb(n) => {
                prop_assert_eq!(report.quarantined, n as u64 * 100_000 + 1);
                prop_assert!(report.quarantined_by_reference > 0, "{report:?}");
            }
            // The deep record is kept whole (its unknown field as text) or quarantined: never
            // does it fail the file.
            Costly::DeepNesting(_) => {
                prop_assert!(report.failure.is_none() && report.records == 2 && report.rows >= 1, "{report:?}");
            }
        }
    }
}
