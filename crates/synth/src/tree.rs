//! The delivery schedule: which log files CloudTrail would write, when, and how big.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::body::Ctx;
use crate::ids::{account_id, hash_str, mix2, push_alnum};
use crate::insight::OpenInsight;
use crate::json::Json;
use crate::record::{Flags, RecordWriter};
use crate::time::{push_compact_minute, push_date_path};
use crate::{SynthFile, TreeOptions};

/// Five minutes: CloudTrail's delivery cadence and file-name granularity.
const SLOT: i64 = 300;
/// Records happen up to this long before their file is delivered.
const MAX_LAG: i64 = 15 * 60;

/// A file whose JSON is built but not yet compressed.
#[derive(Debug)]
struct Pending {
    key: String,
    json: String,
    records: usize,
    insight: bool,
}

fn gzip(json: &str, level: Compression) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(json.len() / 6 + 64), level);
    // Writing to a Vec cannot fail.
    enc.write_all(json.as_bytes()).expect("gzip to memory");
    enc.finish().expect("gzip to memory")
}

/// A compression job: sequence number, uncompressed file, gzip level.
type Job = (u64, Pending, Compression);

/// Worker threads that gzip files while the iterator builds the next ones.
///
/// Results come back tagged with their sequence number and are handed out strictly in order,
/// and every file is compressed on its own, so output never depends on thread count or timing.
/// Workers are started on first use and exit when the pool (its job sender) is dropped.
#[derive(Debug, Default)]
struct Pool {
    jobs: Option<Sender<Job>>,
    results: Option<Receiver<(u64, SynthFile)>>,
    workers: usize,
    sent: u64,
    next: u64,
    ready: BTreeMap<u64, SynthFile>,
    /// Uncompressed bytes submitted but not yet handed out.
    bytes: usize,
}

/// Cap on uncompressed bytes waiting in the pool (bounds memory when the consumer is slow).
const POOL_BYTES: usize = 256 << 20;

impl Pool {
    fn start(&mut self) {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (job_tx, job_rx) = channel::<Job>();
        let (res_tx, res_rx) = channel();
        let job_rx = Arc::new(Mutex::new(job_rx));
        for _ in 0..workers {
            let job_rx = Arc::clone(&job_rx);
            let res_tx = res_tx.clone();
            std::thread::spawn(move || {
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, p, level)) = job else { return };
                    let file = SynthFile {
                        gz: gzip(&p.json, level),
                        json_bytes: p.json.len(),
                        key: p.key,
                        records: p.records,
                        insight: p.insight,
                    };
                    if res_tx.send((seq, file)).is_err() {
                        return;
                    }
                }
            });
        }
        self.jobs = Some(job_tx);
        self.results = Some(res_rx);
        self.workers = workers;
    }

    fn submit(&mut self, p: Pending, level: Compression) {
        if self.jobs.is_none() {
            self.start();
        }
        self.bytes += p.json.len();
        let seq = self.sent;
        self.sent += 1;
        if let Some(tx) = &self.jobs {
            tx.send((seq, p, level)).expect("compression workers alive");
        }
    }

    fn in_flight(&self) -> u64 {
        self.sent - self.next
    }

    fn has_room(&self) -> bool {
        self.bytes < POOL_BYTES && self.in_flight() < 4 * self.workers.max(1) as u64
    }

    /// The next file in order, if it is ready.
    fn take_next(&mut self) -> Option<SynthFile> {
        let f = self.ready.remove(&self.next)?;
        self.next += 1;
        self.bytes -= f.json_bytes;
        Some(f)
    }

    /// Blocks until one more file is compressed.
    fn wait_one(&mut self) {
        let rx = self.results.as_ref().expect("pool started");
        let (seq, f) = rx.recv().expect("compression workers alive");
        self.ready.insert(seq, f);
    }
}

/// Iterator over the files of a synthetic delivery tree, in delivery order.
///
/// Created by [`crate::generate_files`]. Generation is lazy and bounded: the iterator builds
/// delivery rounds (one 5-minute slot across all accounts and regions) a little ahead of the
/// consumer while worker threads gzip them; files come out in delivery order and their bytes
/// do not depend on the number of threads.
#[derive(Debug)]
pub struct SynthFiles {
    opts: TreeOptions,
    rng: fastrand::Rng,
    accounts: Vec<String>,
    account_hashes: Vec<u64>,
    start_secs: i64,
    round: u64,
    /// Delivery time of the next round.
    next_base: i64,
    /// Seconds between the last two rounds (what a round's deliveries may spread over).
    spacing: i64,
    pool: Pool,
    json_total: u64,
    done: bool,
    finished: bool,
    open: Vec<OpenInsight>,
    pending: Vec<Pending>,
    json: Json,
    writer: RecordWriter,
    max_records: usize,
}

impl SynthFiles {
    pub(crate) fn new(opts: &TreeOptions) -> Self {
        let accounts: Vec<String> = (0..opts.accounts).map(|i| account_id(opts.seed, i)).collect();
        let account_hashes = accounts.iter().map(|a| hash_str(a)).collect();
        let start = opts.start.timestamp();
        let empty = opts.accounts == 0 || opts.regions.is_empty() || opts.target_json_bytes == 0;
        SynthFiles {
            rng: fastrand::Rng::with_seed(mix2(opts.seed, 0x7EE)),
            accounts,
            account_hashes,
            start_secs: start,
            round: 0,
            next_base: start,
            spacing: opts.interval_minutes.max(1) as i64 * 60,
            pool: Pool::default(),
            json_total: 0,
            done: empty,
            finished: empty,
            open: Vec::new(),
            pending: Vec::new(),
            json: Json::with_capacity(64 << 10),
            writer: RecordWriter::default(),
            // Cap one file at about a quarter of the tree so small trees still have many files.
            max_records: (opts.target_json_bytes / 1400 / 4).clamp(64, 100_000) as usize,
            opts: opts.clone(),
        }
    }

    /// The 12-digit account ids of the tree (derived from the seed).
    pub fn accounts(&self) -> &[String] {
        &self.accounts
    }

    /// Records in the next file: a log-normal body (median ≈ 12) and a Pareto tail of busy
    /// files reaching thousands of records.
    fn records_per_file(&mut self) -> usize {
        let r = &mut self.rng;
        let n = if r.u8(0..100) < 3 {
            let u = 1.0 - r.f64();
            200.0 * u.powf(-1.0 / 1.1)
        } else {
            // Box-Muller.
            let u1 = 1.0 - r.f64();
            let u2 = r.f64();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            (12f64.ln() + 1.2 * z).exp()
        };
        (n as usize).clamp(1, self.max_records)
    }

    fn push_prefix(&self, key: &mut String, a: usize) {
        if let Some(p) = self.opts.prefix.as_deref() {
            let p = p.trim_matches('/');
            if !p.is_empty() {
                key.push_str(p);
                key.push('/');
            }
        }
        key.push_str("AWSLogs/");
        if let Some(o) = self.opts.org_id.as_deref() {
            key.push_str(o);
            key.push('/');
        }
        key.push_str(&self.accounts[a]);
        key.push('/');
    }

    fn key(&mut self, a: usize, g: usize, delivered: i64, insight: bool) -> String {
        let kind = if insight { "CloudTrail-Insight" } else { "CloudTrail" };
        let region = &self.opts.regions[g];
        let mut key = String::with_capacity(160);
        self.push_prefix(&mut key, a);
        key.push_str(kind);
        key.push('/');
        key.push_str(region);
        key.push('/');
        push_date_path(&mut key, delivered);
        key.push('/');
        key.push_str(&self.accounts[a]);
        key.push('_');
        key.push_str(kind);
        key.push('_');
        key.push_str(region);
        key.push('_');
        push_compact_minute(&mut key, delivered - delivered.rem_euclid(SLOT));
        key.push('_');
        push_alnum(&mut key, &mut self.rng, 16);
        key.push_str(".json.gz");
        key
    }

    fn finish_file(&mut self, key: String, records: usize, insight: bool) {
        let json = std::mem::replace(&mut self.json, Json::with_capacity(64 << 10)).buf;
        self.json_total += json.len() as u64;
        if self.json_total >= self.opts.target_json_bytes {
            self.done = true;
        }
        self.pending.push(Pending { key, json, records, insight });
    }

    /// Hands the files of the current round to the compression pool.
    fn submit(&mut self) {
        let level = Compression::new(self.opts.gzip_level.min(9));
        for p in std::mem::take(&mut self.pending) {
            self.pool.submit(p, level);
        }
    }

    fn log_file(&mut self, a: usize, g: usize, base: i64) {
        let window = self.spacing.min(SLOT);
        let delivered = base + self.rng.i64(0..window);
        let n = self.records_per_file();
        let key = self.key(a, g, delivered, false);
        // Callers and roles from "other" accounts are drawn from the whole tree; drawing the
        // recipient itself simply yields a same-account call.
        let peers: &[String] = if self.accounts.len() > 1 { &self.accounts } else { &[] };
        self.json.clear();
        self.json.open();
        self.json.arr("Records");
        for _ in 0..n {
            let late = self.rng.u16(0..1000) < 5;
            let lag = if late {
                self.rng.i64(3_600..3 * 86_400)
            } else {
                // Mostly 2-15 minutes: CloudTrail batches before it delivers.
                self.rng.i64(20..MAX_LAG)
            };
            let ctx = Ctx {
                account: &self.accounts[a],
                account_hash: self.account_hashes[a],
                region: &self.opts.regions[g],
                event_secs: delivered - lag,
                peers,
                mgmt_account: &self.accounts[0],
            };
            self.writer.write(&mut self.json, &mut self.rng, &ctx, Flags { late });
        }
        self.json.close_arr();
        self.json.close();
        self.finish_file(key, n, false);
    }

    fn insight_file(&mut self, ins: &OpenInsight, delivered: i64, end: Option<(i64, u64)>) {
        let (a, g) = (ins.account, ins.region);
        let key = self.key(a, g, delivered, true);
        self.json.clear();
        self.json.open();
        self.json.arr("Records");
        ins.write(&mut self.json, &mut self.rng, &self.accounts[a], &self.opts.regions[g], end);
        self.json.close_arr();
        self.json.close();
        self.finish_file(key, 1, true);
    }

    fn end_insight(&mut self, ins: OpenInsight, base: i64) {
        let delivered = base + self.rng.i64(0..SLOT);
        let end_secs = (base - SLOT).max(ins.start_secs + 60);
        let minutes = ((end_secs - ins.start_secs) / 60).max(1) as u64;
        self.insight_file(&ins, delivered, Some((end_secs, minutes)));
    }

    /// One delivery round at the next base time, then the time of the one after it.
    fn round(&mut self) {
        let base = self.next_base;
        self.round_at(base);
        if let Some(days) = self.opts.span_days {
            self.spacing = self.span_spacing(base, days);
        }
        self.next_base = base + self.spacing;
    }

    /// Seconds to the next round when the tree spans `days`: the time left to the span's end,
    /// shared among the rounds the remaining bytes need at the bytes per round so far. The
    /// estimate corrects itself each round, so one huge file early on stretches all later
    /// gaps a little instead of leaving a hole. Integer arithmetic: the same on every machine.
    fn span_spacing(&self, base: i64, days: u32) -> i64 {
        let end = self.start_secs + i64::from(days) * 86_400;
        let left = (end - base).max(0) as u128;
        if self.json_total == 0 {
            return SLOT;
        }
        let remaining = u128::from(self.opts.target_json_bytes.saturating_sub(self.json_total));
        // Rounded up: rounded down, a first round holding one very large file made the estimate
        // "one round left", which put the next round at the span's end and every later one there.
        let rounds_left = (remaining * u128::from(self.round)).div_ceil(u128::from(self.json_total)).max(1);
        (left / rounds_left).max(1) as i64
    }

    fn round_at(&mut self, base: i64) {
        self.round += 1;
        let round = self.round;
        if self.opts.insights {
            let (ending, open): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.open).into_iter().partition(|i| i.end_round <= round);
            self.open = open;
            for ins in ending {
                self.end_insight(ins, base);
            }
            for a in 0..self.accounts.len() {
                for g in 0..self.opts.regions.len() {
                    let first = round == 1 && a == 0 && g == 0;
                    if (first || self.rng.u16(0..1000) < 4)
                        && !self.open.iter().any(|i| i.account == a && i.region == g)
                    {
                        let start = base - self.rng.i64(SLOT..3 * SLOT);
                        let end_round = round + 1 + self.rng.u64(0..8);
                        let ins = OpenInsight::new(&mut self.rng, a, &self.accounts[a], g, start, end_round);
                        let delivered = base + self.rng.i64(0..SLOT);
                        self.insight_file(&ins, delivered, None);
                        self.open.push(ins);
                    }
                }
            }
        }
        for a in 0..self.accounts.len() {
            let aw = 1.0 / (1.0 + 0.7 * a as f64);
            for g in 0..self.opts.regions.len() {
                let gw = 1.0 / (1.0 + 1.0 * g as f64);
                let lambda = 1.8 * aw * gw;
                let n = (lambda + self.rng.f64()) as usize;
                for _ in 0..n {
                    self.log_file(a, g, base);
                    if self.done {
                        return;
                    }
                }
            }
        }
    }
}

impl Iterator for SynthFiles {
    type Item = SynthFile;

    fn next(&mut self) -> Option<SynthFile> {
        loop {
            if let Some(f) = self.pool.take_next() {
                return Some(f);
            }
            // Keep generating while the pool has room, so building JSON on this thread
            // overlaps with compression on the workers.
            if !self.finished && self.pool.has_room() {
                if self.done {
                    // Close insights still open so every Start has its End.
                    let base = self.next_base;
                    for ins in std::mem::take(&mut self.open) {
                        self.end_insight(ins, base);
                    }
                    self.finished = true;
                } else {
                    self.round();
                }
                self.submit();
                continue;
            }
            if self.pool.in_flight() == 0 {
                return None;
            }
            self.pool.wait_one();
        }
    }
}
