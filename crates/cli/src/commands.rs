//! The subcommands.
//!
//! Output goes through `outln!`, which returns write errors instead of panicking, so
//! `parquetrail summary … | head` ends quietly (see `main`). Each returns the process exit code: 0
//! when everything converted, 1 when some input was quarantined (files or records, each named),
//! 2 for usage or I/O errors (an output that could not be written, a source that could not be read).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parquetrail_core::archive::{ExportFormat, Exporter, RowFilter, Summary};
use parquetrail_core::convert::{self, FileReport, FileTotals, Options};
use parquetrail_ingest::error::storage_retryable;
use parquetrail_ingest::ledger::{Candidate, Checkpoint, Claims, Entry, Ledger, Naming};
use parquetrail_ingest::s3::S3Settings;
use parquetrail_ingest::{Location, Pipeline, Storage, StorageError};
use rayon::prelude::*;
use serde::Serialize;

use crate::local::{self, DirSink, SourceFile};
use crate::{ConvertArgs, DdlArgs, DemoArgs, EngineArg, ExportArgs, FormatArg, GenerateArgs, SummaryArgs};

/// Totals of a conversion run; `--json` prints exactly this.
#[derive(Debug, Default, Serialize)]
pub struct RunSummary {
    /// Objects, records and bytes, summed over every object's report.
    #[serde(flatten)]
    pub totals: FileTotals,
    /// `records == rows + quarantined + filtered`, with `rows` as the archive holds them: the rows
    /// of the committed outputs, counted from their footers, not those the run meant to write.
    pub reconciled: bool,
    /// Rows of the events and insights outputs as committed (see `reconciled`).
    pub committed_rows: u64,
    /// Sources whose plain output names another object owns, converted under names of their own.
    pub renamed: Vec<String>,
    pub partitions: u64,
    pub seconds: f64,
    pub skip_reasons: BTreeMap<String, u64>,
    /// Files not converted, with the reason (quarantined or retry-worthy errors).
    pub failures: Vec<Failure>,
    /// Objects holding quarantined records.
    pub record_quarantines: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub key: String,
    pub reason: String,
    /// Whether retrying may succeed (I/O) rather than never (corrupt content).
    pub retryable: bool,
    pub quarantine_path: Option<String>,
}

impl RunSummary {
    fn add(&mut self, key: &str, result: Result<&FileReport, (String, bool)>, partitions: &mut BTreeSet<String>) {
        match result {
            Err((reason, retryable)) => {
                self.totals.add_failed();
                self.failures.push(Failure { key: key.to_string(), reason, retryable, quarantine_path: None });
            }
            Ok(report) => {
                self.totals.add(report);
                if let Some(reason) = &report.skipped {
                    *self.skip_reasons.entry(reason.clone()).or_default() += 1;
                } else if let Some(failure) = &report.failure {
                    self.failures.push(Failure {
                        key: key.to_string(),
                        reason: failure.reason.clone(),
                        retryable: false,
                        quarantine_path: Some(failure.quarantine_path.clone()),
                    });
                }
                for o in &report.outputs {
                    partitions.insert(o.path.rsplit_once('/').map(|(p, _)| p.to_string()).unwrap_or_default());
                }
                if let Some(q) = &report.quarantine_path {
                    self.record_quarantines.push(q.clone());
                }
            }
        }
    }
}

/// Converts local files into the archive under `sink`, in parallel, with a progress bar on a
/// terminal. Sources that would share output names are named apart first (see [`name_sources`]);
/// every converted file is recorded in the archive's ledger, so later runs know who owns a name.
pub fn run_convert(files: &[SourceFile], sink: &DirSink, options: &Options, jobs: usize) -> Result<RunSummary> {
    let total: u64 = files.iter().map(|f| f.size).sum();
    let started = Instant::now();
    let storage: Arc<dyn Storage> = Arc::new(parquetrail_ingest::local::LocalStorage::new(sink.root()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let mut ledger = runtime
        .block_on(Ledger::open(storage.clone(), "", Checkpoint::default()))
        .with_context(|| format!("reading the ledger under {}", sink.root().display()))?;
    let converted = |f: &SourceFile| f.explicit || looks_like_log_file(&f.key);
    let mut resolved = Identities::default();
    let identities: Vec<Vec<u8>> = files.iter().map(|f| resolved.of(&f.path)).collect();
    let sources: Vec<(usize, String, Vec<u8>)> = (0..files.len())
        .filter(|&i| converted(&files[i]))
        .map(|i| (i, files[i].key.clone(), identities[i].clone()))
        .collect();
    let namings = name_sources(&sources, ledger.claims(), |i| file_content(&files[i].path));
    let progress = progress_bar(total);
    let records = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let results: Mutex<Vec<(usize, Result<FileReport, parquetrail_core::Error>)>> =
        Mutex::new(Vec::with_capacity(files.len()));
    let sizes: Vec<u64> = files.iter().map(|f| f.size).collect();
    for_each_largest_first(&sizes, jobs, |i| {
        let file = &files[i];
        let result = match namings.get(&i) {
            // A directory walk meets READMEs, checksums and the like; CloudTrail only ever writes
            // `.json.gz`. Files named on the command line are always read.
            None => {
                Ok(FileReport { key: file.key.clone(), skipped: Some(NOT_A_LOG_NAME.into()), ..FileReport::default() })
            }
            Some(Naming::CopyOf(j)) => Ok(FileReport {
                key: file.key.clone(),
                skipped: Some(format!("{COPY_OF} {}", files[*j].path.display())),
                ..FileReport::default()
            }),
            Some(naming) => {
                let source = convert::Source {
                    key: &file.key,
                    distinct: (*naming == Naming::Distinct).then_some(identities[i].as_slice()),
                    ..convert::Source::default()
                };
                File::open(&file.path)
                    .map_err(|source| parquetrail_core::Error::Read { key: file.key.clone(), offset: 0, source })
                    .and_then(|f| convert::convert_source(source, f, sink, options))
            }
        };
        if let Ok(r) = &result {
            records.fetch_add(r.records, Ordering::Relaxed);
        }
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        progress.inc(file.size);
        progress.set_message(format!("{n}/{} files, {} records", files.len(), records.load(Ordering::Relaxed)));
        results.lock().expect("results lock").push((i, result));
    });
    progress.finish_and_clear();
    let mut results = results.into_inner().expect("results lock");
    results.sort_by_key(|(i, _)| *i);
    // A manifest or ledger that cannot be written does not hide the run: the summary says what was
    // committed and what is not listed yet, and a rerun (which lists its outputs again) repairs it.
    let unlisted = publish(sink, &results).err();
    let mut summary = RunSummary::default();
    let mut partitions = BTreeSet::new();
    for (i, result) in &results {
        let file = &files[*i];
        if let Ok(report) = result
            && (report.skipped.is_none() || report.failure.is_some())
        {
            let distinct = namings.get(i) == Some(&Naming::Distinct);
            if distinct {
                summary.renamed.push(file.path.display().to_string());
            }
            let entry = Entry::for_file(None, &file.key, None, file.size, report, ledger.run());
            ledger.record(&entry.with_source(&identities[*i], distinct));
        }
        let result = result.as_ref().map_err(|e| (e.to_string(), e.retryable()));
        summary.add(&file.key, result, &mut partitions);
    }
    if let Some(e) = unlisted {
        // Failures other than the storage's (starting a runtime) are worth a rerun too.
        let retryable = e.downcast_ref::<StorageError>().is_none_or(storage_retryable);
        summary.add_unfinished(parquetrail_ingest::manifest::MANIFESTS, &format!("{e:#}: the outputs are committed, but readers going through manifests do not see them until a rerun lists them"), retryable);
    }
    if let Err(e) = runtime.block_on(ledger.flush()) {
        summary.add_unfinished(parquetrail_ingest::ledger::LEDGER_DIR, &format!("{e}: the run is not recorded, so a later run cannot tell which object owns these output names until a rerun records it"), storage_retryable(&e));
    }
    let committed = committed_rows(sink.root(), results.iter().filter_map(|(_, r)| r.as_ref().ok()), jobs)?;
    summary.finish(partitions, started, committed);
    Ok(summary)
}

/// Runs `work` on every index of `sizes` on `jobs` threads, the largest first (longest
/// processing time first): a large file started last would convert alone while the other
/// threads wait, so a tree with a few large files would take as long as its largest ones in a
/// row. Ties keep their order. Returns once every index is done (on fewer threads if some
/// cannot be started: this one works too).
fn for_each_largest_first(sizes: &[u64], jobs: usize, work: impl Fn(usize) + Sync) {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let pull = || {
        while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            work(i);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..jobs.clamp(1, order.len().max(1)) {
            if std::thread::Builder::new().name("convert".into()).spawn_scoped(scope, pull).is_err() {
                break;
            }
        }
        pull();
    })
}

/// What `convert` reports for a source whose content another source of the run already has.
const COPY_OF: &str = "the same content as (converted once, under the same names)";

/// Local files' full identities: their canonical paths, as the bytes the OS gives (two names
/// that decode alike as text stay apart).
///
/// Each directory is resolved once: a file that is not itself a symbolic link resolves to its
/// directory's canonical path joined with its name, one `lstat` instead of a `readlink` per
/// component of its path (a tree's files share a few hundred directories).
#[derive(Default)]
struct Identities {
    directories: std::collections::HashMap<PathBuf, Option<PathBuf>>,
}

impl Identities {
    fn of(&mut self, path: &Path) -> Vec<u8> {
        self.canonical(path).unwrap_or_else(|| path.to_path_buf()).into_os_string().into_encoded_bytes()
    }

    fn canonical(&mut self, path: &Path) -> Option<PathBuf> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return std::fs::canonicalize(path).ok();
        };
        if std::fs::symlink_metadata(path).ok()?.file_type().is_symlink() {
            return std::fs::canonicalize(path).ok();
        }
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        let directory = self
            .directories
            .entry(parent.to_path_buf())
            .or_insert_with(|| std::fs::canonicalize(parent).ok())
            .as_ref()?;
        Some(directory.join(name))
    }
}

/// The first 64 bits of the SHA-256 of a local file's decompressed content, when it can be read.
fn file_content(path: &Path) -> Option<u64> {
    let file = File::open(path).ok()?;
    let sha = parquetrail_core::digest::inflated_sha256(io::BufReader::new(file)).ok()?;
    Some(u64::from_be_bytes(sha[..8].try_into().expect("8 bytes")))
}

/// Names the sources of a run (`(index, key, full identity)`): the plain names unless another
/// object owns them, by the ledger or earlier in the run (see `parquetrail_ingest::ledger`).
/// `content` is asked only for sources whose names are contested.
fn name_sources(
    sources: &[(usize, String, Vec<u8>)],
    claims: &Claims,
    content: impl Fn(usize) -> Option<u64> + Sync,
) -> std::collections::HashMap<usize, Naming> {
    let mut candidates: Vec<Candidate> = sources
        .iter()
        .map(|(_, key, identity)| Candidate {
            key: key.clone(),
            identity: parquetrail_ingest::ledger::identity_hash(identity),
            content: None,
        })
        .collect();
    let contested = parquetrail_ingest::ledger::contested(&candidates, claims);
    let contents: Vec<Option<u64>> = sources
        .par_iter()
        .zip(contested.par_iter())
        .map(|((i, _, _), contested)| if *contested { content(*i) } else { None })
        .collect();
    for (candidate, content) in candidates.iter_mut().zip(contents) {
        candidate.content = content;
    }
    let namings = parquetrail_ingest::ledger::assign_names(&candidates, claims);
    sources
        .iter()
        .zip(namings)
        .map(|((i, _, _), naming)| {
            let naming = match naming {
                Naming::CopyOf(j) => Naming::CopyOf(sources[j].0),
                other => other,
            };
            (*i, naming)
        })
        .collect()
}

/// Rows of the events and insights outputs the reports name, counted from the committed files'
/// footers. An output two reports name (which should never be) counts once: what is there.
///
/// The footers are read on `jobs` threads ([`for_each_largest_first`], every footer costing
/// about the same): this runs after the last file is converted, so read on one thread it was a
/// serial tail of the run (0.34 of 4.5 s on the 400 MB tree at `-j2`).
fn committed_rows<'a>(root: &Path, reports: impl Iterator<Item = &'a FileReport>, jobs: usize) -> Result<u64> {
    let paths: Vec<&str> = reports
        .filter(|r| r.failure.is_none())
        .flat_map(|r| r.outputs.iter())
        .filter(|o| o.dataset != convert::Dataset::Digests)
        .map(|o| o.path.as_str())
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .collect();
    let rows = AtomicU64::new(0);
    let failure = Mutex::new(None);
    for_each_largest_first(&vec![0; paths.len()], jobs, |i| {
        let path = paths[i];
        match read_back_rows(&root.join(path), path).with_context(|| format!("reading back {path}")) {
            Ok(n) => _ = rows.fetch_add(n, Ordering::Relaxed),
            Err(e) => _ = failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(e),
        }
    });
    match failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        Some(e) => Err(e),
        None => Ok(rows.into_inner()),
    }
}

/// The rows of one committed output, from its footer: one read of its last bytes, and a second
/// only for a footer longer than that.
fn read_back_rows(file: &Path, path: &str) -> Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(file)?;
    let len = file.metadata()?.len();
    let (mut want, mut tail) = (convert::FOOTER_READ_BYTES, Vec::new());
    loop {
        let take = usize::try_from(len).map_or(want, |len| len.min(want));
        tail.resize(take, 0);
        file.seek(SeekFrom::Start(len - take as u64))?;
        file.read_exact(&mut tail)?;
        match convert::committed_rows(&tail, path)? {
            convert::FooterRows::Rows(rows) => return Ok(rows),
            convert::FooterRows::Needs(needed) if needed > take && (take as u64) < len => want = needed,
            convert::FooterRows::Needs(needed) => bail!("its footer says {needed} bytes, more than the file's {len}"),
        }
    }
}

/// Lists the run's outputs in their partitions' manifests (one write per partition), which makes
/// them visible to readers that go through manifests (Athena, `summary`, `export`, `compact`).
/// Outputs whose rows a compaction already holds (a rerun over compacted days) stay unlisted.
fn publish(sink: &DirSink, results: &[(usize, Result<FileReport, parquetrail_core::Error>)]) -> Result<()> {
    let paths: Vec<String> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .filter(|r| r.failure.is_none())
        .flat_map(|r| r.outputs.iter().map(|o| o.path.clone()))
        .collect();
    if paths.is_empty() {
        return Ok(());
    }
    let storage = parquetrail_ingest::local::LocalStorage::new(sink.root());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let added = runtime
        .block_on(parquetrail_ingest::manifest::add(&storage, "", &paths))
        .with_context(|| format!("listing outputs in the manifests under {}", sink.root().display()))?;
    if !added.refused.is_empty() {
        eprintln!(
            "{} output(s) already compacted: their rows are in compacted files, so they stay unlisted",
            added.refused.len()
        );
    }
    Ok(())
}

impl RunSummary {
    /// Counts what a directory walk could not read (a subdirectory without permission, an entry
    /// that vanished) as failed files, named, that a rerun may convert: the rest of the run is
    /// not held back by them.
    fn add_unreadable(&mut self, unreadable: &[local::Unreadable]) {
        for u in unreadable {
            self.totals.add_failed();
            self.failures.push(Failure {
                key: u.path.display().to_string(),
                reason: format!("cannot read it: {}", u.reason),
                retryable: u.retryable,
                quarantine_path: None,
            });
        }
    }

    /// Names a step after the conversion that failed (listing in manifests, the ledger): not a
    /// file, but a storage failure a rerun may repair (then the run exits 2 with its summary).
    fn add_unfinished(&mut self, what: &str, reason: &str, retryable: bool) {
        self.failures.push(Failure {
            key: what.to_string(),
            reason: reason.to_string(),
            retryable,
            quarantine_path: None,
        });
    }

    /// Totals up; `committed` is the rows the archive holds of this run's outputs.
    fn finish(&mut self, partitions: BTreeSet<String>, started: Instant, committed: u64) {
        self.partitions = partitions.len() as u64;
        self.seconds = started.elapsed().as_secs_f64();
        self.committed_rows = committed;
        self.reconciled = self.totals.rows == committed && self.totals.reconciles();
    }
}

fn progress_bar(total: u64) -> ProgressBar {
    let progress = if io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
        )
        .expect("valid template"),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    progress
}

/// One object of an S3 or mixed conversion: where it is read from and its key.
enum Item {
    S3 { storage: Arc<dyn Storage>, key: String, size: u64 },
    File(SourceFile),
}

/// Conversion when S3 is involved (source, destination or both): objects are listed and streamed
/// through the ingest pipeline — the same code path as the Lambda. Names are assigned as in
/// [`run_convert`], and every converted object is recorded in the archive's ledger.
async fn run_convert_s3(args: &ConvertArgs, options: Options, jobs: usize) -> Result<RunSummary> {
    let settings = S3Settings::from_env().map_err(anyhow::Error::msg)?;
    let dest = Location::parse(&args.out)?;
    let dest_storage = dest.storage(&settings).await;
    let mut ledger = Ledger::open(dest_storage.clone(), dest.prefix(), Checkpoint::default())
        .await
        .with_context(|| format!("reading the ledger of {dest}"))?;
    parquetrail_ingest::ledger::record_shaping(dest_storage.as_ref(), dest.prefix(), &options.shaping)
        .await
        .with_context(|| format!("recording the shaping rules in {dest}"))?;
    let pipeline = Arc::new(Pipeline::new(dest_storage, dest.prefix(), options));
    let mut items = Vec::new();
    let mut unreadable = Vec::new();
    for source in &args.sources {
        match Location::parse(source)? {
            location @ Location::S3 { .. } => {
                let storage = location.storage(&settings).await;
                let objects = storage.list(location.prefix()).await.with_context(|| format!("listing {location}"))?;
                if objects.is_empty() {
                    bail!("no objects under {location}");
                }
                items.extend(objects.into_iter().map(|o| Item::S3 {
                    storage: storage.clone(),
                    key: o.key,
                    size: o.size,
                }));
            }
            Location::Local(path) => {
                let archive = (!args.out.starts_with("s3://")).then(|| Path::new(&args.out));
                let (files, missed) = local::list_sources(&[path], archive)?;
                items.extend(files.into_iter().map(Item::File));
                unreadable.extend(missed);
            }
        }
    }
    let mut resolved = Identities::default();
    let identities: Vec<Vec<u8>> = items
        .iter()
        .map(|item| match item {
            Item::S3 { storage, key, .. } => parquetrail_ingest::ledger::full_identity(storage.bucket(), key),
            Item::File(f) => resolved.of(&f.path),
        })
        .collect();
    let sources: Vec<(usize, String, Vec<u8>)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match item {
            Item::S3 { key, .. } => Some((i, key.clone(), identities[i].clone())),
            Item::File(f) if f.explicit || looks_like_log_file(&f.key) => {
                Some((i, f.key.clone(), identities[i].clone()))
            }
            Item::File(_) => None,
        })
        .collect();
    let handle = tokio::runtime::Handle::current();
    let namings = tokio::task::block_in_place(|| {
        name_sources(&sources, ledger.claims(), |i| match &items[i] {
            Item::File(f) => file_content(&f.path),
            Item::S3 { storage, key, .. } => {
                let opened = handle.block_on(storage.open(key, None)).ok()?;
                let reader = tokio_util::io::SyncIoBridge::new_with_handle(opened.reader, handle.clone());
                let sha = parquetrail_core::digest::inflated_sha256(reader).ok()?;
                Some(u64::from_be_bytes(sha[..8].try_into().expect("8 bytes")))
            }
        })
    });
    let total = items
        .iter()
        .map(|i| match i {
            Item::S3 { size, .. } => *size,
            Item::File(f) => f.size,
        })
        .sum();
    let progress = progress_bar(total);
    let started = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let copy_names: Vec<String> = items
        .iter()
        .map(|item| match item {
            Item::S3 { storage, key, .. } => storage.uri(key),
            Item::File(f) => f.path.display().to_string(),
        })
        .collect();
    let mut meta = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let permit = permits.clone().acquire_owned().await.expect("semaphore is never closed");
        let pipeline = pipeline.clone();
        let progress = progress.clone();
        let naming = namings.get(&i).copied();
        let distinct = (naming == Some(Naming::Distinct)).then(|| identities[i].clone());
        let copy_of = match naming {
            Some(Naming::CopyOf(j)) => Some(copy_names[j].clone()),
            _ => None,
        };
        meta.push(match &item {
            Item::S3 { storage, size, .. } => (storage.bucket().map(str::to_string), *size),
            Item::File(f) => (None, f.size),
        });
        tasks.spawn(async move {
            let (key, size, outcome) = match (item, copy_of) {
                (Item::S3 { key, size, .. } | Item::File(SourceFile { key, size, .. }), Some(copy_of)) => {
                    let report = FileReport {
                        key: key.clone(),
                        skipped: Some(format!("{COPY_OF} {copy_of}")),
                        ..FileReport::default()
                    };
                    (key, size, Some(Err(report)))
                }
                (Item::S3 { storage, key, size }, None) => {
                    let outcome = pipeline.process_named(storage.as_ref(), &key, None, None, distinct.as_deref()).await;
                    (key, size, Some(Ok(outcome)))
                }
                (Item::File(f), None) if naming.is_none() => (f.key, f.size, None),
                (Item::File(f), None) => {
                    let outcome = pipeline.process_file_named(&f.path, &f.key, distinct.as_deref()).await;
                    (f.key, f.size, Some(Ok(outcome)))
                }
            };
            progress.inc(size);
            drop(permit);
            (i, key, outcome)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        results.push(joined.context("a conversion task panicked")?);
    }
    progress.finish_and_clear();
    results.sort_by_key(|(i, _, _)| *i);
    let mut summary = RunSummary::default();
    let mut partitions = BTreeSet::new();
    let mut committed: BTreeMap<String, u64> = BTreeMap::new();
    for (i, key, outcome) in results {
        let skipped;
        let result = match &outcome {
            None => {
                skipped =
                    FileReport { key: key.clone(), skipped: Some(NOT_A_LOG_NAME.into()), ..FileReport::default() };
                Ok(&skipped)
            }
            Some(Err(copy)) => Ok(copy),
            Some(Ok(o)) => o.result.as_ref().map_err(|e| (e.message.clone(), e.retryable)),
        };
        if let (Some(Ok(o)), Ok(report)) = (&outcome, &result)
            && (report.skipped.is_none() || report.failure.is_some())
        {
            let distinct = namings.get(&i) == Some(&Naming::Distinct);
            if distinct {
                summary.renamed.push(copy_names[i].clone());
            }
            let (bucket, size) = &meta[i];
            let entry = Entry::for_file(bucket.as_deref(), &o.key, o.etag.as_deref(), *size, report, ledger.run());
            ledger.record(&entry.with_source(&identities[i], distinct));
            if report.failure.is_none() {
                // What an output holds is what its last writer wrote: a path named twice counts once.
                for out in report.outputs.iter().filter(|o| o.dataset != convert::Dataset::Digests) {
                    committed.insert(out.path.clone(), out.rows);
                }
            }
        }
        summary.add(&key, result, &mut partitions);
    }
    ledger.flush().await.with_context(|| format!("recording the run in the ledger of {dest}"))?;
    summary.add_unreadable(&unreadable);
    summary.finish(partitions, started, committed.values().sum());
    Ok(summary)
}

const NOT_A_LOG_NAME: &str = "not named .json, .json.gz or .gz (found in a directory walk)";

fn looks_like_log_file(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key).to_ascii_lowercase();
    name.ends_with(".json.gz") || name.ends_with(".json") || name.ends_with(".gz") || name.ends_with(".jsonl")
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn print_run(summary: &RunSummary, out: &dyn std::fmt::Display) -> Result<()> {
    let s = summary;
    let t = &summary.totals;
    let rate = if s.seconds > 0.0 { t.json_bytes as f64 / 1e6 / s.seconds } else { 0.0 };
    outln!("Converted {} of {} files in {:.2} s ({:.0} MB/s of JSON)", t.converted, t.files, s.seconds, rate);
    outln!(
        "  records   {} = {} rows + {} quarantined{}  {}",
        t.records,
        t.rows,
        t.quarantined,
        if t.filtered > 0 { format!(" + {} filtered", t.filtered) } else { String::new() },
        if s.reconciled {
            "(reconciled)".to_string()
        } else {
            format!("(DOES NOT RECONCILE: the archive holds {} of these rows)", s.committed_rows)
        }
    );
    if t.digests > 0 {
        outln!("  digests   {} digest file(s), one row each in the digests dataset", t.digests);
    }
    for (rule, n) in &t.shaped {
        outln!("  shaped    {rule}: {n}");
    }
    if t.duplicate_keys > 0 {
        outln!(
            "  repeated  {} record(s) with a key given twice: converted with the last value, earlier ones kept in `unmapped`",
            t.duplicate_keys
        );
    }
    outln!("  input     {} stored, {} of JSON", mb(t.bytes_in), mb(t.json_bytes));
    outln!(
        "  output    {} of Parquet in {} files, {} partitions, under {out}",
        mb(t.bytes_out),
        t.outputs,
        s.partitions,
    );
    for (reason, n) in &s.skip_reasons {
        outln!("  skipped   {n} × {reason}");
    }
    if !s.renamed.is_empty() {
        outln!(
            "  renamed   {} source(s) whose output names another object owns; their outputs are named -d<hash of the source>:",
            s.renamed.len()
        );
        for source in &s.renamed {
            outln!("    {source}");
        }
    }
    if !s.record_quarantines.is_empty() {
        outln!(
            "  quarantined records (raw text + reason) in {} file(s) under {out}/quarantine/records",
            s.record_quarantines.len(),
        );
    }
    if !s.failures.is_empty() {
        outln!("  FAILED    {} file(s) not converted:", s.failures.len());
        for f in &s.failures {
            let hint = match (&f.quarantine_path, f.retryable) {
                (Some(q), _) => format!(" [quarantined: {q}]"),
                (None, true) => " [retry may succeed]".to_string(),
                (None, false) => String::new(),
            };
            outln!("    {}{hint}\n      {}", f.key, f.reason);
        }
    }
    Ok(())
}

/// The README's exit codes: 2 when a file failed for an I/O reason (an output that could not be
/// written, a source that could not be read: a rerun may succeed), 1 when input was quarantined
/// (whole files or records) or the run does not reconcile, 0 when everything converted.
fn exit_for(summary: &RunSummary) -> ExitCode {
    if summary.failures.iter().any(|f| f.retryable) {
        ExitCode::from(2)
    } else if summary.totals.failed > 0 || summary.totals.quarantined > 0 || !summary.reconciled {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

pub fn convert(args: &ConvertArgs) -> Result<ExitCode> {
    let options = Options { writer: args.writer.settings()?, shaping: args.shaping.shaping()?, ..Options::default() };
    if !options.shaping.is_empty() {
        eprintln!("Shaping what is archived with {}", options.shaping.provenance().join(", "));
    }
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let uses_s3 = args.sources.iter().chain([&args.out]).any(|s| s.starts_with("s3://"));
    let summary = if uses_s3 {
        // Network-bound: more objects in flight than cores.
        let jobs = args.jobs.unwrap_or(cpus * 4);
        let runtime =
            tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
        runtime.block_on(run_convert_s3(args, options, jobs))?
    } else {
        let sources: Vec<PathBuf> = args.sources.iter().map(PathBuf::from).collect();
        let (files, unreadable) = local::list_sources(&sources, Some(Path::new(&args.out)))?;
        if files.is_empty() && unreadable.is_empty() {
            bail!("no files found in {}", args.sources.join(", "));
        }
        let sink = DirSink::new(&args.out).with_context(|| format!("creating {}", args.out))?;
        options.shaping.record(&sink).with_context(|| format!("recording the shaping rules in {}", args.out))?;
        let mut summary = run_convert(&files, &sink, &options, args.jobs.unwrap_or(cpus))?;
        summary.add_unreadable(&unreadable);
        summary
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_run(&summary, &args.out)?;
    }
    Ok(exit_for(&summary))
}

pub fn generate(args: &GenerateArgs) -> Result<ExitCode> {
    if let Some(days) = args.activity_days {
        return generate_activity(args, days);
    }
    let summary = generate_tree(args)?;
    outln!(
        "Wrote {} files ({} records, {} of JSON, {} gzip; {} Insight files) for accounts {} in {} under {}",
        summary.files,
        summary.records,
        mb(summary.json_bytes),
        mb(summary.gzip_bytes),
        summary.insight_files,
        summary.accounts.join(", "),
        summary.regions.join(", "),
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `generate --activity-days`: background with injected episodes, and the list of them.
fn generate_activity(args: &GenerateArgs, days: u32) -> Result<ExitCode> {
    use parquetrail_synth::activity::{ActivityOptions, write_activity};
    if days < 8 {
        bail!("--activity-days must be at least 8 (7 days of baseline before the first episode)");
    }
    if args.accounts == 0 || args.regions.is_empty() {
        bail!("need at least one account and one region");
    }
    if !(args.scale > 0.0 && args.scale <= 100.0) {
        bail!("--scale must be in (0, 100]");
    }
    let options = ActivityOptions {
        seed: args.seed,
        start: args.start.and_time(chrono::NaiveTime::MIN).and_utc(),
        days,
        accounts: args.accounts,
        regions: args.regions.clone(),
        episodes: args.episodes,
        scale: args.scale,
        ..ActivityOptions::default()
    };
    let summary = write_activity(&args.dir, &options).with_context(|| format!("writing {}", args.dir.display()))?;
    let list = args.episodes_file.clone().unwrap_or_else(|| args.dir.join("injected-episodes.ndjson"));
    let mut text = String::new();
    for e in &summary.episodes {
        text.push_str(&serde_json::to_string(e)?);
        text.push('\n');
    }
    std::fs::write(&list, text).with_context(|| format!("writing {}", list.display()))?;
    outln!(
        "Wrote {} files ({} records) over {days} days under {}, with {} injected episodes listed in {}",
        summary.files,
        summary.records,
        args.dir.display(),
        summary.episodes.len(),
        list.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn generate_tree(args: &GenerateArgs) -> Result<parquetrail_synth::TreeSummary> {
    if args.mb == 0 {
        bail!("--mb must be at least 1");
    }
    if args.accounts == 0 || args.regions.is_empty() {
        bail!("need at least one account and one region");
    }
    if args.days == Some(0) {
        bail!("--days must be at least 1");
    }
    if let Some(org) = &args.org {
        crate::check_org(org)?;
    }
    let options = parquetrail_synth::TreeOptions {
        seed: args.seed,
        target_json_bytes: args.mb * 1_000_000,
        accounts: args.accounts,
        regions: args.regions.clone(),
        org_id: args.org.clone(),
        prefix: args.prefix.clone(),
        insights: !args.no_insights,
        start: args.start.and_time(chrono::NaiveTime::MIN).and_utc(),
        span_days: args.days,
        ..parquetrail_synth::TreeOptions::default()
    };
    parquetrail_synth::write_tree(&args.dir, &options).with_context(|| format!("writing {}", args.dir.display()))
}

pub fn demo(args: &DemoArgs) -> Result<ExitCode> {
    let trail = args.dir.join("trail");
    let archive = args.dir.join("archive");
    outln!(
        "1/5 Generating a sample CloudTrail delivery tree ({} MB of JSON, seed {}) in {}",
        args.mb,
        args.seed,
        trail.display()
    );
    let generated = generate_tree(&GenerateArgs {
        dir: trail.clone(),
        mb: args.mb,
        seed: args.seed,
        accounts: 3,
        regions: vec!["us-east-1".into(), "us-west-2".into(), "eu-west-1".into()],
        org: Some("o-demo123abc".into()),
        prefix: None,
        no_insights: false,
        start: NaiveDate::from_ymd_opt(2024, 3, 1).expect("a valid date"),
        days: None,
        activity_days: None,
        episodes: 0,
        episodes_file: None,
        scale: 1.0,
    })?;
    outln!("    {} files, {} records, {} gzip\n", generated.files, generated.records, mb(generated.gzip_bytes));
    outln!("2/5 Converting it to Parquet in {}", archive.display());
    let (files, _) = local::list_sources(std::slice::from_ref(&trail), Some(&archive))?;
    let sink = DirSink::new(&archive)?;
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let run = run_convert(&files, &sink, &Options::default(), jobs)?;
    print_run(&run, &archive.display())?;
    outln!("\n3/5 Compacting: each partition's small files become one sorted, deduplicated file");
    compact_demo(&archive)?;
    outln!("\n4/5 What the archive holds");
    summarise(&archive, false)?;
    outln!("\n5/5 Event history, beyond 90 days: the newest write events, as CloudTrail's console shows them");
    lookup_demo(&archive)?;
    outln!("    (parquetrail lookup {} --attribute ReadOnly=false --max-results 5)", archive.display());
    outln!(
        "\nBrowse it: `parquetrail serve {}` serves the web console (Event history, Insights, dashboards)\nat the address it prints, and the same events to the AWS CLI's `cloudtrail lookup-events`.",
        archive.display()
    );
    outln!("\nNext: query it with DuckDB (pip install duckdb):");
    outln!(
        "  duckdb -c \"SELECT eventname, count(*) n FROM read_parquet('{}/events/**/*.parquet', hive_partitioning=true) GROUP BY 1 ORDER BY n DESC LIMIT 10\"",
        archive.display()
    );
    outln!(
        "or get CloudTrail JSON back:\n  parquetrail export {} --event-name ConsoleLogin --out logins.jsonl",
        archive.display()
    );
    Ok(exit_for(&run))
}

/// The demo's lookup: the console's default view (Read-only = false), newest first, one page.
fn lookup_demo(archive: &Path) -> Result<()> {
    use parquetrail_core::lookup::{AttributeKey, LookupQuery, lookup_event};
    let storage = Arc::new(parquetrail_ingest::local::LocalStorage::new(archive));
    let reader = parquetrail_ingest::reader::ArchiveReader::new(storage, "");
    let mut query = LookupQuery::new(chrono::DateTime::UNIX_EPOCH, chrono::DateTime::<chrono::Utc>::MAX_UTC);
    query.attributes.push((AttributeKey::ReadOnly, "false".into()));
    query.max_results = 5;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let page = runtime.block_on(reader.lookup(&query, None)).context("looking events up")?;
    let events: Vec<_> = page.events.iter().map(lookup_event).collect();
    let mut out = std::io::stdout().lock();
    crate::lookup::write_table(&mut out, &events)
}

/// The demo's compaction: every partition, replaced files deleted at once (nobody is querying).
fn compact_demo(archive: &Path) -> Result<()> {
    use parquetrail_ingest::compaction::{Compactor, Scope, Settings};
    let storage = Arc::new(parquetrail_ingest::local::LocalStorage::new(archive));
    let settings = Settings { grace: Duration::ZERO, ..Settings::default() };
    let compactor = Compactor::new(storage, "", parquetrail_core::convert::Layout::default(), settings);
    let scope = Scope {
        datasets: vec![convert::Dataset::Events, convert::Dataset::Insights, convert::Dataset::Digests],
        ..Scope::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let report = runtime.block_on(compactor.run(&scope)).context("compacting the archive")?;
    if let Some(f) = report.failures.first() {
        bail!("compacting {}: {}", f.partition, f.error);
    }
    let compacted: Vec<_> = report.compacted().collect();
    outln!(
        "    {} partitions: {} files → {}, {} → {}, {} duplicate record(s) removed",
        compacted.len(),
        compacted.iter().map(|p| p.files_before).sum::<usize>(),
        compacted.iter().map(|p| p.files_after).sum::<usize>(),
        mb(compacted.iter().map(|p| p.bytes_before).sum()),
        mb(compacted.iter().map(|p| p.bytes_after).sum()),
        compacted.iter().map(|p| p.duplicates_removed).sum::<u64>()
    );
    Ok(())
}

pub fn summary(args: &SummaryArgs) -> Result<ExitCode> {
    if !args.archive.is_dir() {
        bail!("{} is not a directory (expected an archive written by `parquetrail convert`)", args.archive.display());
    }
    summarise(&args.archive, args.json)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Serialize)]
struct DatasetSummary {
    dataset: String,
    accounts: BTreeSet<String>,
    regions: BTreeSet<String>,
    dates: usize,
    #[serde(flatten)]
    summary: Summary,
}

fn summarise(archive: &Path, json: bool) -> Result<()> {
    let mut all = Vec::new();
    for dataset in ["events", "insights"] {
        let files = local::list_archive(archive, dataset)?;
        let mut summary = Summary::default();
        let mut accounts = BTreeSet::new();
        let mut regions = BTreeSet::new();
        let mut dates = BTreeSet::new();
        for f in &files {
            let reader = File::open(&f.path).with_context(|| format!("opening {}", f.path.display()))?;
            summary.add_file(reader, f.size, &f.path.display().to_string())?;
            accounts.insert(f.account.clone());
            regions.insert(f.region.clone());
            dates.insert(f.date.clone());
        }
        all.push(DatasetSummary { dataset: dataset.into(), accounts, regions, dates: dates.len(), summary });
    }
    // Digest files are counted, not read: one row each, about integrity rather than activity.
    let files = local::list_archive(archive, "digests")?;
    let mut summary = Summary::default();
    summary.rows = files.len() as u64;
    summary.files = files.len() as u64;
    summary.bytes = files.iter().map(|f| f.size).sum();
    all.push(DatasetSummary {
        dataset: "digests".into(),
        accounts: files.iter().map(|f| f.account.clone()).collect(),
        regions: files.iter().map(|f| f.region.clone()).collect(),
        dates: files.iter().map(|f| &f.date).collect::<BTreeSet<_>>().len(),
        summary,
    });
    if json {
        outln!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    let top = |m: &BTreeMap<String, u64>, n| {
        Summary::top(m, n).iter().map(|(k, c)| format!("{k} {c}")).collect::<Vec<_>>().join(", ")
    };
    for d in &all {
        let s = &d.summary;
        if s.rows == 0 {
            outln!("{}: empty", d.dataset);
            continue;
        }
        if d.dataset == "digests" {
            outln!(
                "digests: {} digest files ({}), {} account(s), {} region(s), {} day(s)",
                s.files,
                mb(s.bytes),
                d.accounts.len(),
                d.regions.len(),
                d.dates
            );
            continue;
        }
        outln!(
            "{}: {} rows in {} files ({}), {} account(s), {} region(s), {} day(s), {} → {}",
            d.dataset,
            s.rows,
            s.files,
            mb(s.bytes),
            d.accounts.len(),
            d.regions.len(),
            d.dates,
            s.first_event.as_deref().unwrap_or("?"),
            s.last_event.as_deref().unwrap_or("?")
        );
        if d.dataset == "events" {
            outln!("  top sources:     {}", top(&s.by_source, 6));
            outln!("  top events:      {}", top(&s.by_name, 6));
            outln!("  identity types:  {}", top(&s.by_identity_type, 8));
            outln!("  errors:          {} ({})", s.errors, top(&s.by_error, 4));
            outln!(
                "  console logins:  {} ({} without MFA, {} failed); root calls: {}",
                s.console_logins,
                s.console_logins_without_mfa,
                s.console_login_failures,
                s.root_calls
            );
        }
    }
    Ok(())
}

fn parse_instant(flag: &str, value: &str) -> Result<DateTime<Utc>> {
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| anyhow::anyhow!("{flag}: expected YYYY-MM-DD or an RFC 3339 time, got {value:?}"))
}

pub fn export(args: &ExportArgs) -> Result<ExitCode> {
    if !args.archive.is_dir() {
        bail!("{} is not a directory (expected an archive written by `parquetrail convert`)", args.archive.display());
    }
    let filter = RowFilter {
        event_names: args.event_name.iter().cloned().collect(),
        event_sources: args.event_source.iter().cloned().collect(),
        since: args.since.as_deref().map(|v| parse_instant("--since", v)).transpose()?,
        until: args.until.as_deref().map(|v| parse_instant("--until", v)).transpose()?,
    };
    let since_date = filter.since.map(|t| t.date_naive().format("%Y-%m-%d").to_string());
    let until_date = filter.until.map(|t| t.date_naive().format("%Y-%m-%d").to_string());
    let format = match args.format {
        FormatArg::Jsonl => ExportFormat::JsonLines,
        FormatArg::Records => ExportFormat::Records,
    };
    let out: Box<dyn Write> = if args.out.as_os_str() == "-" {
        Box::new(BufWriter::new(io::stdout().lock()))
    } else {
        Box::new(BufWriter::new(File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?))
    };
    let mut exporter = Exporter::new(out, format)?;
    let mut files_read = 0;
    for dataset in args.dataset.names() {
        for f in local::list_archive(&args.archive, dataset)? {
            // Partition pruning: skip files whose path already rules them out.
            let keep = (args.account.is_empty() || args.account.contains(&f.account))
                && (args.region.is_empty() || args.region.contains(&f.region))
                && since_date.as_ref().is_none_or(|s| f.date >= *s)
                && until_date.as_ref().is_none_or(|u| f.date <= *u);
            if !keep {
                continue;
            }
            files_read += 1;
            let reader = File::open(&f.path).with_context(|| format!("opening {}", f.path.display()))?;
            // A batch at a time: memory does not grow with the file (a compacted one may hold
            // millions of rows).
            for batch in parquetrail_core::archive::row_batches(reader, Some(&f.path.display().to_string()), 1024)? {
                for row in batch? {
                    if filter.matches(&row) {
                        exporter.write(&row)?;
                    }
                }
            }
        }
    }
    let (_, written) = exporter.finish()?;
    eprintln!("Exported {written} record(s) from {files_read} Parquet file(s) to {}", args.out.display());
    if let Some(note) = local::recorded_shaping(&args.archive)? {
        eprintln!("Note: {note}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn ddl(args: &DdlArgs) -> Result<ExitCode> {
    let since = NaiveDate::parse_from_str(&args.since, "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("--since: expected YYYY-MM-DD, got {:?}", args.since))?;
    let options = parquetrail_core::ddl::DdlOptions {
        engine: match args.engine {
            EngineArg::Athena => parquetrail_core::ddl::Engine::Athena,
            EngineArg::Spark => parquetrail_core::ddl::Engine::Spark,
        },
        database: args.database.clone(),
        table_prefix: args.table_prefix.clone(),
        location: args.location.clone(),
        accounts: args.accounts.clone(),
        regions: args.regions.clone(),
        since,
    };
    let ddl = parquetrail_core::ddl::ddl(&options)?;
    outln!("{ddl}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resolving each directory once names every file as `realpath` does: through symbolic
    /// links to directories and to the file itself, from relative paths, and a missing file as
    /// given.
    #[cfg(unix)]
    #[test]
    fn identities_are_canonical_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("real/day")).unwrap();
        std::fs::write(root.join("real/day/a.json.gz"), b"a").unwrap();
        std::fs::write(root.join("real/day/b.json.gz"), b"b").unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("linked")).unwrap();
        std::os::unix::fs::symlink(root.join("real/day/b.json.gz"), root.join("real/day/c.json.gz")).unwrap();
        let mut resolved = Identities::default();
        let cwd = std::env::current_dir().unwrap();
        let relative = pathdiff(&root.join("linked/day/a.json.gz"), &cwd);
        for path in [
            root.join("real/day/a.json.gz"),
            root.join("linked/day/a.json.gz"),
            root.join("linked/day/b.json.gz"),
            root.join("real/day/c.json.gz"),
            root.join("linked/day/../day/a.json.gz"),
            relative,
        ] {
            let expected = std::fs::canonicalize(&path).unwrap().into_os_string().into_encoded_bytes();
            assert_eq!(resolved.of(&path), expected, "{}", path.display());
        }
        let missing = root.join("linked/day/missing.json.gz");
        assert_eq!(resolved.of(&missing), missing.into_os_string().into_encoded_bytes());
        // One resolution per directory name: real/day, linked/day, linked/day/../day and the
        // relative one (the symbolic link to a file and the missing file resolve no directory).
        assert_eq!(resolved.directories.len(), 4, "{:?}", resolved.directories.keys());
    }

    /// Footers read back on any number of threads count every output once, and a missing
    /// output is an error that names it.
    #[test]
    fn committed_rows_are_read_back_on_any_number_of_threads() {
        let sink = parquetrail_core::sink::MemorySink::default();
        let dir = tempfile::tempdir().unwrap();
        let mut reports = Vec::new();
        for (i, records) in [3usize, 1, 4, 1, 5].into_iter().enumerate() {
            let records: Vec<String> = (0..records)
                .map(|r| format!(r#"{{"eventTime":"2024-03-0{}T00:00:0{r}Z","eventID":"{i}-{r}"}}"#, 1 + r % 2))
                .collect();
            let json = format!(r#"{{"Records":[{}]}}"#, records.join(","));
            let key = format!(
                "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T000{i}Z_a.json"
            );
            reports.push(convert::convert(&key, json.as_bytes(), &sink, &Options::default()).unwrap());
        }
        for path in sink.paths() {
            let file = dir.path().join(&path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, sink.get(&path).unwrap()).unwrap();
        }
        let outputs: usize = reports.iter().map(|r| r.outputs.len()).sum();
        assert!(outputs > 5, "records of two days give some files two outputs: {outputs}");
        for jobs in [0, 1, 2, 3, 64] {
            assert_eq!(committed_rows(dir.path(), reports.iter(), jobs).unwrap(), 14, "{jobs} jobs");
        }
        let gone = &reports[2].outputs[0].path;
        std::fs::remove_file(dir.path().join(gone)).unwrap();
        let error = format!("{:#}", committed_rows(dir.path(), reports.iter(), 2).unwrap_err());
        assert!(error.contains(&format!("reading back {gone}")), "{error}");
    }

    /// `path` relative to `base` (both absolute), through `..` components.
    fn pathdiff(path: &Path, base: &Path) -> PathBuf {
        let (path, base): (Vec<_>, Vec<_>) = (path.components().collect(), base.components().collect());
        let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
        let mut out: PathBuf = base[common..].iter().map(|_| "..").collect();
        out.extend(&path[common..]);
        out
    }

    /// One thread takes the files largest first, ties in their order; several threads take
    /// every file exactly once.
    #[test]
    fn files_are_converted_largest_first() {
        let sizes = [5, 900, 5, 70, 12_000, 0, 900];
        for jobs in [0, 1] {
            let started = Mutex::new(Vec::new());
            for_each_largest_first(&sizes, jobs, |i| started.lock().unwrap().push(i));
            assert_eq!(started.into_inner().unwrap(), [4, 1, 6, 3, 0, 2, 5], "jobs {jobs}");
        }
        for jobs in [2, 3, 16] {
            let started = Mutex::new(Vec::new());
            for_each_largest_first(&sizes, jobs, |i| started.lock().unwrap().push(i));
            let mut started = started.into_inner().unwrap();
            started.sort();
            assert_eq!(started, (0..sizes.len()).collect::<Vec<_>>(), "jobs {jobs}");
        }
        for_each_largest_first(&[], 4, |i| panic!("no file, yet {i}"));
    }
}
