//! Throughput of each stage a log file goes through, in bytes per second of *uncompressed*
//! CloudTrail JSON (so the stages compare directly), over a deterministic synthetic tree with
//! CloudTrail's heavy-tailed file sizes (`parquetrail-synth`, 16 MiB of JSON, gzip level 6).
//!
//! - `decompress`: gzip → bytes (flate2, the zlib-rs backend), nothing else.
//! - `split`: plain JSON → one borrowed record at a time ([`RecordReader`], incl. its SHA-256).
//! - `parse`: record text → normalized [`Row`] (typed columns, raw bodies, `unmapped`) and its
//!   partition date — the normalization step.
//! - `encode`: rows → zstd Parquet in memory, one output per source file as `convert` writes them.
//! - `convert`: the whole of [`convert`] per file, gzip in → Parquet objects out.
//!
//! `cargo bench -p parquetrail-core --bench stages` (add `-- --quick` for a smoke run).

use std::hint::black_box;
use std::io::Read;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::read::MultiGzDecoder;
use parquetrail_core::convert::{Options, convert};
use parquetrail_core::encode::{ParquetOutput, WriterSettings};
use parquetrail_core::log_file::RecordReader;
use parquetrail_core::record::Row;
use parquetrail_core::sink::{MemorySink, Sink};
use parquetrail_synth::{SynthFile, TreeOptions, generate_files};

const JSON_BYTES: u64 = 16 << 20;

fn inflate(gz: &[u8]) -> Vec<u8> {
    let mut json = Vec::new();
    MultiGzDecoder::new(gz).read_to_end(&mut json).expect("synthetic gzip inflates");
    json
}

/// Every record's text, per file, as [`RecordReader`] hands them out.
fn split(json: &[u8]) -> Vec<Vec<u8>> {
    let mut reader = RecordReader::new(json).expect("in memory");
    let mut out = Vec::new();
    while let Some(record) = reader.next_record().expect("synthetic JSON is well formed") {
        out.push(record.text.to_vec());
    }
    out
}

fn stages(c: &mut Criterion) {
    let opts = TreeOptions { seed: 4, target_json_bytes: JSON_BYTES, ..TreeOptions::default() };
    let files: Vec<SynthFile> = generate_files(&opts).collect();
    let json: Vec<Vec<u8>> = files.iter().map(|f| inflate(&f.gz)).collect();
    let records: Vec<Vec<Vec<u8>>> = json.iter().map(|j| split(j)).collect();
    let rows: Vec<Vec<Row<'_>>> = records
        .iter()
        .map(|file| file.iter().enumerate().map(|(i, t)| Row::parse(t, "bench", i).expect("parses")).collect())
        .collect();
    let bytes: u64 = json.iter().map(|j| j.len() as u64).sum();

    let mut group = c.benchmark_group("stages");
    group.throughput(Throughput::Bytes(bytes)).sample_size(10);
    group.bench_function("decompress", |b| {
        let mut buf = vec![0u8; 256 * 1024];
        b.iter(|| {
            for f in &files {
                let mut gz = MultiGzDecoder::new(&f.gz[..]);
                while gz.read(&mut buf).expect("inflates") > 0 {}
            }
        })
    });
    group.bench_function("split", |b| {
        b.iter(|| {
            for j in &json {
                let mut reader = RecordReader::new(&j[..]).expect("in memory");
                while let Some(record) = reader.next_record().expect("well formed") {
                    black_box(record.text);
                }
            }
        })
    });
    group.bench_function("parse", |b| {
        b.iter(|| {
            for (i, text) in records.iter().flatten().enumerate() {
                let row = Row::parse(text, "bench", i).expect("parses");
                black_box(row.event_time().expect("has a time"));
                black_box(row);
            }
        })
    });
    group.bench_function("encode", |b| {
        let settings = WriterSettings::default();
        b.iter(|| {
            let sink = MemorySink::default();
            for file in &rows {
                let mut out = ParquetOutput::new(sink.create("x.parquet").expect("memory"), &settings).expect("writer");
                for row in file {
                    out.push(row).expect("encodes");
                }
                black_box(out.finish().expect("finishes").1);
            }
        })
    });
    group.bench_function("convert", |b| {
        let options = Options::default();
        b.iter(|| {
            let sink = MemorySink::default();
            for f in &files {
                black_box(convert(&f.key, &f.gz[..], &sink, &options).expect("converts").rows);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
