//! Measures generation throughput (uncompressed JSON MB/s), in memory, with and without gzip.
//!
//! `cargo run --release -p parquetrail-synth --example throughput -- [MB] [gzip-level]`

use std::time::Instant;

use parquetrail_synth::{TreeOptions, generate_files};

fn main() {
    let mut args = std::env::args().skip(1);
    let mb: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let level: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(6);
    let opts = TreeOptions { seed: 1, target_json_bytes: mb << 20, gzip_level: level, ..TreeOptions::default() };
    let t = Instant::now();
    let (mut files, mut records, mut json, mut gz, mut max) = (0usize, 0u64, 0u64, 0u64, 0usize);
    for f in generate_files(&opts) {
        files += 1;
        records += f.records as u64;
        json += f.json_bytes as u64;
        gz += f.gz.len() as u64;
        max = max.max(f.records);
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{files} files, {records} records ({} B/record), max {max} records/file, \
         {:.1} MB JSON -> {:.1} MB gzip (level {level}, ratio {:.1}), {secs:.2} s, {:.0} MB/s of JSON",
        json / records.max(1),
        json as f64 / 1e6,
        gz as f64 / 1e6,
        json as f64 / gz.max(1) as f64,
        json as f64 / 1e6 / secs,
    );
}
