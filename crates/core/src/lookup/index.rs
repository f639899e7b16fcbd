//! The lookup index: what compaction writes beside its outputs so that a lookup can rule a
//! compacted file out without reading it.
//!
//! A point lookup (one event ID over years) would otherwise read the footer of every file of every
//! partition, about 10 KB each: several percent of the archive's bytes and one request per file
//! before a single row is decoded. For each compacted file the index keeps its row count, its
//! `eventtime_ts` range and one split-block bloom filter (Parquet's own [`Sbbf`], the filter
//! Parquet engines read) per indexed key: [`INDEXED_KEYS`]. A lookup reads one small object per
//! compaction instead of every footer and skips the files whose range or filters rule them out.
//!
//! The values are taken by `AttributeKey::value`, the function lookups match with, so the
//! filter holds exactly what a lookup compares (the derived `Username` included). A filter can
//! only answer "maybe" wrongly, never "no" wrongly: a skipped file holds no hit.
//!
//! Format: `PTLKIDX1` magic, a little-endian `u32` length, a JSON header (file names, row counts,
//! time ranges, filter offsets), then each filter as [`Sbbf::write`] writes it (Thrift header and
//! bitset), at the offsets the header gives. Readers refuse any other magic and treat an unreadable index as absent (they read the
//! files instead).

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use parquet::bloom_filter::Sbbf;
use serde::{Deserialize, Serialize};

use super::{AttributeKey, LookupQuery};
use crate::record::Row;

/// The keys with a filter: those whose values are many and specific, where a filter rules most
/// files out. Keys with few values (`ReadOnly`, `EventSource`) would pass everywhere.
pub const INDEXED_KEYS: [AttributeKey; 4] =
    [AttributeKey::EventId, AttributeKey::AccessKeyId, AttributeKey::Username, AttributeKey::EventName];

/// The filters' target false-positive probability. A false positive costs one needless file read
/// (footer and row group, tens of KB); halving it costs about one more bit per distinct value.
/// At 1 %, a point lookup over a thousand partitions reads about ten files it did not need.
pub const FALSE_POSITIVE_RATE: f64 = 0.01;

/// The distinct values a filter is first sized for; it is folded down to its content when the file
/// closes ([`Sbbf::fold_to_target_fpp`]). Files with more distinct values still answer correctly,
/// with more false positives.
const INITIAL_DISTINCT: u64 = 1 << 20;

const MAGIC: &[u8; 8] = b"PTLKIDX1";

/// The columns [`FileIndexer::add`] reads from a batch (the others are not needed).
pub const COLUMNS: [&str; 5] = ["eventid", "eventname", "insightdetails", "useridentity", "eventtime_ts"];

/// One compacted file, as the index describes it.
#[derive(Debug, Clone)]
pub struct FileIndex {
    /// The file's name within its partition directory.
    pub name: String,
    pub rows: u64,
    /// The `eventtime_ts` range of its rows (microseconds), `None` without any.
    pub time_us: Option<(i64, i64)>,
    pub filters: BTreeMap<AttributeKey, Sbbf>,
}

impl FileIndex {
    /// Whether the file can hold a hit of `query` within `[from, to]` (microseconds).
    pub fn may_match(&self, query: &LookupQuery, from: i64, to: i64) -> bool {
        if let Some((min, max)) = self.time_us
            && (max < from || min > to)
        {
            return false;
        }
        query.attributes.iter().all(|(key, value)| self.filters.get(key).is_none_or(|f| f.check(value.as_str())))
    }
}

/// Builds a [`FileIndex`] from the batches written to one file.
#[derive(Debug)]
pub struct FileIndexer {
    index: FileIndex,
}

impl FileIndexer {
    pub fn new(name: impl Into<String>) -> FileIndexer {
        let filters = INDEXED_KEYS
            .iter()
            .map(|&k| (k, Sbbf::new_with_ndv_fpp(INITIAL_DISTINCT, FALSE_POSITIVE_RATE).expect("valid filter size")))
            .collect();
        FileIndexer { index: FileIndex { name: name.into(), rows: 0, time_us: None, filters } }
    }

    /// Adds the rows of `batch` (a batch of the dataset's schema, or of its [`COLUMNS`]).
    pub fn add(&mut self, batch: &RecordBatch) -> Result<(), crate::DataError> {
        let schema = batch.schema();
        let wanted: Vec<usize> = COLUMNS.iter().filter_map(|c| schema.index_of(c).ok()).collect();
        let projected = batch.project(&wanted)?;
        let rows: Vec<Row<'static>> = serde_arrow::from_record_batch(&projected)?;
        for row in &rows {
            self.index.rows += 1;
            if let Some(t) = row.eventtime_ts {
                self.index.time_us = Some(self.index.time_us.map_or((t, t), |(min, max)| (min.min(t), max.max(t))));
            }
            for (key, filter) in &mut self.index.filters {
                if let Some(v) = key.value(row) {
                    filter.insert(v.as_str());
                }
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> FileIndex {
        for filter in self.index.filters.values_mut() {
            filter.fold_to_target_fpp(FALSE_POSITIVE_RATE);
        }
        self.index
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    files: Vec<FileHeader>,
}

#[derive(Serialize, Deserialize)]
struct FileHeader {
    name: String,
    rows: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_us: Option<(i64, i64)>,
    /// Key → `[offset, length]` of its filter, from the end of the header.
    filters: BTreeMap<String, (u64, u64)>,
}

/// The objects a compaction's index is stored as. Each holds every file's name, row count and time
/// range, and the filters of some keys. Event IDs, one per row, take most of an index's bytes
/// (58% on the benchmark archive) and only a lookup by event ID uses them, so they have an object
/// of their own; the other keys share one. A lookup reads one part per compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IndexPart {
    /// `AccessKeyId`, `Username` and `EventName`: `<stem>.lookup`.
    Keys,
    /// `EventId`: `<stem>.ids.lookup`.
    EventIds,
}

impl IndexPart {
    pub const ALL: [IndexPart; 2] = [IndexPart::Keys, IndexPart::EventIds];

    /// The keys whose filters this part holds.
    pub fn keys(self) -> &'static [AttributeKey] {
        match self {
            IndexPart::Keys => &[AttributeKey::AccessKeyId, AttributeKey::Username, AttributeKey::EventName],
            IndexPart::EventIds => &[AttributeKey::EventId],
        }
    }

    /// The end of the part's object name, after the compaction's stem.
    pub fn suffix(self) -> &'static str {
        match self {
            IndexPart::Keys => ".lookup",
            IndexPart::EventIds => ".ids.lookup",
        }
    }

    /// The part that rules most files out for `query`: event IDs when it looks one up (one file
    /// in the whole archive holds it), the other keys otherwise.
    pub fn for_query(query: &LookupQuery) -> IndexPart {
        if query.attributes.iter().any(|(k, _)| *k == AttributeKey::EventId) {
            IndexPart::EventIds
        } else {
            IndexPart::Keys
        }
    }

    /// The compaction stem of an index object's name, for any part; `None` for other names.
    pub fn stem_of(name: &str) -> Option<&str> {
        let stem = name.strip_suffix(IndexPart::Keys.suffix())?;
        Some(stem.strip_suffix(".ids").unwrap_or(stem))
    }
}

/// Serializes the index of a compaction's files, one object per [`IndexPart`].
pub fn encode_parts(files: &[FileIndex]) -> Vec<(IndexPart, Vec<u8>)> {
    IndexPart::ALL.iter().map(|&part| (part, encode_keys(files, part.keys()))).collect()
}

/// Serializes the index of a compaction's files, every filter in one object (what
/// [`decode`] reads; an archive compacted before [`IndexPart`]s has such indexes).
pub fn encode(files: &[FileIndex]) -> Vec<u8> {
    encode_keys(files, &INDEXED_KEYS)
}

fn encode_keys(files: &[FileIndex], keys: &[AttributeKey]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut header = Header { files: Vec::with_capacity(files.len()) };
    for f in files {
        let mut filters = BTreeMap::new();
        for (key, filter) in f.filters.iter().filter(|(k, _)| keys.contains(k)) {
            let start = body.len() as u64;
            filter.write(&mut body).expect("writing to a Vec cannot fail");
            filters.insert(key.as_str().to_string(), (start, body.len() as u64 - start));
        }
        header.files.push(FileHeader { name: f.name.clone(), rows: f.rows, time_us: f.time_us, filters });
    }
    let header = serde_json::to_vec(&header).expect("the header serializes");
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&body);
    out
}

/// Reads an index written by [`encode`]. Keys this build does not know are ignored (their
/// attribute is then not ruled out).
pub fn decode(bytes: &[u8]) -> Result<Vec<FileIndex>, String> {
    let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or("not a parquetrail lookup index (bad magic)")?;
    let (len, rest) = rest.split_first_chunk::<4>().ok_or("truncated lookup index")?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err("truncated lookup index header".into());
    }
    let (header, body) = rest.split_at(len);
    let header: Header = serde_json::from_slice(header).map_err(|e| format!("lookup index header: {e}"))?;
    header
        .files
        .into_iter()
        .map(|f| {
            let mut filters = BTreeMap::new();
            for (key, (offset, length)) in f.filters {
                let Ok(key) = key.parse::<AttributeKey>() else { continue };
                let range = usize::try_from(offset).ok().zip(usize::try_from(offset + length).ok());
                let bytes = range.and_then(|(a, b)| body.get(a..b)).ok_or("lookup index filter out of bounds")?;
                filters.insert(key, Sbbf::from_bytes(bytes).map_err(|e| format!("lookup index filter: {e}"))?);
            }
            Ok(FileIndex { name: f.name, rows: f.rows, time_us: f.time_us, filters })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lookup::parse_attribute;
    use chrono::{TimeZone, Utc};

    fn batch(records: &[&str]) -> RecordBatch {
        let json = format!("{{\"Records\":[{}]}}", records.join(","));
        let sink = crate::sink::MemorySink::default();
        let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0000Z_a.json.gz";
        let report = crate::convert::convert(key, json.as_bytes(), &sink, &crate::convert::Options::default())
            .expect("converts");
        let out = report.outputs.first().expect("one output").path.clone();
        let bytes = sink.get(&out).expect("written");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
    }

    fn query(attribute: &str) -> LookupQuery {
        let mut q = LookupQuery::new(
            Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2024, 12, 31, 0, 0, 0).unwrap(),
        );
        q.attributes.push(parse_attribute(attribute).unwrap());
        q
    }

    #[test]
    fn filters_keep_every_value_lookups_compare_and_rule_others_out() {
        let records = [
            r#"{"eventVersion":"1.08","eventTime":"2024-03-01T10:00:00Z","eventID":"11111111-aaaa","eventName":"PutObject","eventSource":"s3.amazonaws.com","awsRegion":"us-east-1","recipientAccountId":"111122223333","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/Admin/alice","accessKeyId":"ASIAEXAMPLE1"}}"#,
            r#"{"eventVersion":"1.08","eventTime":"2024-03-01T11:00:00Z","eventID":"22222222-bbbb","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","awsRegion":"us-east-1","recipientAccountId":"111122223333","userIdentity":{"type":"Root","arn":"arn:aws:iam::111122223333:root"}}"#,
        ];
        let mut indexer = FileIndexer::new("f.parquet");
        indexer.add(&batch(&records)).unwrap();
        let index = decode(&encode(&[indexer.finish()])).unwrap().remove(0);
        assert_eq!(index.rows, 2);
        let (from, to) = (i64::MIN, i64::MAX);
        for present in [
            "EventId=11111111-aaaa",
            "EventId=22222222-bbbb",
            "Username=alice",
            "Username=root",
            "AccessKeyId=ASIAEXAMPLE1",
            "EventName=ConsoleLogin",
            // Not indexed: never ruled out.
            "EventSource=nowhere.amazonaws.com",
        ] {
            assert!(index.may_match(&query(present), from, to), "{present}");
        }
        // Distinct absent values: with two values in a filter sized for its content, a false
        // positive among ten is possible but all ten would mean the filter is not filtering.
        let absent = (0..10).filter(|i| index.may_match(&query(&format!("EventId=absent-{i}")), from, to)).count();
        assert!(absent < 10, "{absent} of 10 absent event IDs passed the filter");
        let ten = Utc.with_ymd_and_hms(2024, 3, 1, 10, 0, 0).unwrap().timestamp_micros();
        let eleven = Utc.with_ymd_and_hms(2024, 3, 1, 11, 0, 0).unwrap().timestamp_micros();
        assert_eq!(index.time_us, Some((ten, eleven)));
        assert!(!index.may_match(&query("EventId=11111111-aaaa"), eleven + 1, i64::MAX));
        assert!(!index.may_match(&query("EventId=11111111-aaaa"), i64::MIN, ten - 1));
        assert!(index.may_match(&query("EventId=11111111-aaaa"), ten, ten));
    }

    /// Each part holds its keys' filters and every file's rows and time range; together they rule
    /// out what the whole index rules out.
    #[test]
    fn parts_split_the_filters_and_each_rules_out_its_keys() {
        let mut indexer = FileIndexer::new("f.parquet");
        indexer
            .add(&batch(&[r#"{"eventTime":"2024-03-01T10:00:00Z","eventID":"e-1","eventName":"PutObject"}"#]))
            .unwrap();
        let whole = indexer.finish();
        let parts = encode_parts(std::slice::from_ref(&whole));
        assert_eq!(parts.iter().map(|(p, _)| *p).collect::<Vec<_>>(), IndexPart::ALL);
        for (part, bytes) in &parts {
            let index = decode(bytes).unwrap().remove(0);
            assert_eq!((index.rows, index.time_us), (whole.rows, whole.time_us), "{part:?}");
            let keys: std::collections::BTreeSet<_> = part.keys().iter().copied().collect();
            assert_eq!(index.filters.keys().copied().collect::<std::collections::BTreeSet<_>>(), keys, "{part:?}");
            let (from, to) = (i64::MIN, i64::MAX);
            for k in part.keys() {
                let q = query(&format!("{}=absent-value-{}", k.as_str(), k.as_str()));
                assert_eq!(IndexPart::for_query(&q) == IndexPart::EventIds, *k == AttributeKey::EventId);
            }
            assert!(index.may_match(&query("EventId=e-1"), from, to));
            assert!(index.may_match(&query("EventName=PutObject"), from, to));
        }
        let ids = decode(&parts[1].1).unwrap().remove(0);
        let keys = decode(&parts[0].1).unwrap().remove(0);
        let ruled_out = |i: &FileIndex, a: &str| (0..20).all(|n| !i.may_match(&query(&format!("{a}{n}")), 0, i64::MAX));
        assert!(ruled_out(&ids, "EventId=other-"), "the event ID part rules event IDs out");
        assert!(ruled_out(&keys, "EventName=Other"), "the keys part rules event names out");
        assert!(!ruled_out(&keys, "EventId=other-"), "the keys part has no event ID filter");
        assert!(parts[1].1.len() < encode(&[whole]).len());
        assert_eq!(IndexPart::stem_of("c-ab12.ids.lookup"), Some("c-ab12"));
        assert_eq!(IndexPart::stem_of("c-ab12.lookup"), Some("c-ab12"));
        assert_eq!(IndexPart::stem_of("c-ab12.json"), None);
    }

    #[test]
    fn damaged_indexes_are_refused_not_misread() {
        let mut indexer = FileIndexer::new("f.parquet");
        indexer.add(&batch(&[r#"{"eventTime":"2024-03-01T10:00:00Z","eventID":"x"}"#])).unwrap();
        let bytes = encode(&[indexer.finish()]);
        assert!(decode(b"PAR1....").unwrap_err().contains("magic"));
        assert!(decode(&bytes[..10]).is_err());
        assert!(decode(&bytes[..bytes.len() - 1]).is_err(), "a truncated filter must not decode");
    }
}
