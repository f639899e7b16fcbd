//! CloudTrail Insights computed from the archive: per-minute series → episodes → CloudTrail-format
//! Insight records. Pure: metrics in, records out (`docs/INSIGHTS.md` explains the model).
//!
//! - [`metrics`]: per-minute counts per account, Region, source, name, error code, read-only and
//!   category, with bounded tallies of identities and user agents for the attributions.
//! - [`detect`]: the model — a time-of-day baseline over comparable days, thresholds, episodes.
//! - [`table`]: the `metrics` dataset's Parquet files, and metrics read from `events` files.
//! - [`series`]: the per-period series of `ListInsightsMetricData`.
//! - [`record`]: `Start`/`End` records in CloudTrail's format, with content-derived event IDs.
//!
//! ```
//! use parquetrail_core::insights::{detect::{detect, Model}, metrics::Metrics, record::insight_records};
//! let metrics = Metrics::default(); // normally built from events or read from the `metrics` dataset
//! let episodes = detect(&metrics, &Model::default(), 0, i64::MAX);
//! assert!(episodes.iter().flat_map(insight_records).next().is_none());
//! ```

pub mod detect;
pub mod metrics;
pub mod record;
pub mod series;
pub mod table;

#[cfg(test)]
mod tests;

/// A query or model setting out of range, with a message a client or user can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidSetting {
    #[error("Period must be 60, 300 or 3600, not {0}")]
    Period(u32),
    #[error("StartTime must be before EndTime")]
    Range,
    #[error("baseline days must be at least 7 (got {0})")]
    BaselineDays(u32),
    #[error("sigmas must be ≥ 0 and ratio ≥ 1")]
    Thresholds,
    #[error("drop ratio must be in [0, 1) (got {0})")]
    DropRatio(f64),
    #[error("end-after minutes must be at least 1")]
    EndAfter,
}
