//! Export reads an archive file a batch at a time: what it holds does not grow with the file.

use std::io::Write;

use parquetrail_core::archive::{ExportFormat, Exporter, read_rows, row_batches};
use parquetrail_core::convert::{self, Options};
use parquetrail_core::encode::WriterSettings;
use parquetrail_core::sink::MemorySink;

/// One converted file of `n` records, in row groups of 1,024 rows.
fn archive_file(n: usize) -> bytes::Bytes {
    let records: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"eventVersion":"1.08","eventTime":"2024-03-01T10:{:02}:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","recipientAccountId":"111122223333","eventID":"e-{i}","requestParameters":{{"bucketName":"b","key":"{}"}}}}"#,
                i / 60 % 60,
                i % 60,
                "k".repeat(200)
            )
        })
        .collect();
    let body = format!(r#"{{"Records":[{}]}}"#, records.join(","));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(body.as_bytes()).unwrap();
    let options = Options {
        writer: WriterSettings { row_group_rows: 1024, batch_rows: 512, ..WriterSettings::default() },
        ..Options::default()
    };
    let sink = MemorySink::default();
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T1000Z_x.json.gz";
    let report = convert::convert(key, &gz.finish().unwrap()[..], &sink, &options).unwrap();
    assert_eq!(report.rows, n as u64);
    bytes::Bytes::from(sink.get(&report.outputs[0].path).unwrap())
}

/// Exports `file` as `export` does, to nowhere; returns the records written and the most bytes held.
fn export(file: bytes::Bytes) -> (u64, usize) {
    super::peak_while(|| {
        let mut exporter = Exporter::new(std::io::sink(), ExportFormat::JsonLines).unwrap();
        for batch in row_batches(file, Some("f"), 1024).unwrap() {
            for row in batch.unwrap() {
                exporter.write(&row).unwrap();
            }
        }
        exporter.finish().unwrap().1
    })
}

#[test]
fn exporting_a_file_eight_times_larger_holds_about_the_same() {
    let _one_at_a_time = super::exclusive();
    let (small, large) = (archive_file(4_000), archive_file(32_000));
    let large_len = large.len();
    let (small_written, small_peak) = export(small.clone());
    let (large_written, large_peak) = export(large.clone());
    assert_eq!((small_written, large_written), (4_000, 32_000));
    // The file's own bytes are held by the caller before either export starts: only what
    // exporting adds is counted. Reading it whole holds every row at once.
    let ((), whole) = super::peak_while(|| {
        let rows = read_rows(large.clone(), Some("f")).unwrap();
        assert_eq!(rows.len(), 32_000);
    });
    assert!(
        large_peak < small_peak * 2,
        "exporting 8× the rows held {large_peak} bytes against {small_peak} ({large_len} bytes of Parquet)"
    );
    assert!(
        whole > large_peak * 4,
        "reading whole holds {whole} bytes, streaming {large_peak}: the test would not see a regression"
    );
}
