//! Fast UTC time formatting from Unix seconds (chrono's formatter is the slowest part of a
//! record otherwise; these are written millions of times).

use crate::json::push_padded;

/// Calendar fields of a Unix timestamp (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Splits Unix seconds into calendar fields (proleptic Gregorian, UTC).
pub(crate) fn civil(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    Civil {
        year: if m <= 2 { y + 1 } else { y },
        month: m,
        day: d,
        hour: sod / 3600,
        minute: sod / 60 % 60,
        second: sod % 60,
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, CloudTrail's `eventTime` format.
pub(crate) fn push_iso(out: &mut String, secs: i64) {
    let c = civil(secs);
    push_padded(out, c.year as u64, 4);
    out.push('-');
    push_padded(out, c.month as u64, 2);
    out.push('-');
    push_padded(out, c.day as u64, 2);
    out.push('T');
    push_padded(out, c.hour as u64, 2);
    out.push(':');
    push_padded(out, c.minute as u64, 2);
    out.push(':');
    push_padded(out, c.second as u64, 2);
    out.push('Z');
}

/// `YYYYMMDDTHHMMZ`, the timestamp in a log file name.
pub(crate) fn push_compact_minute(out: &mut String, secs: i64) {
    let c = civil(secs);
    push_padded(out, c.year as u64, 4);
    push_padded(out, c.month as u64, 2);
    push_padded(out, c.day as u64, 2);
    out.push('T');
    push_padded(out, c.hour as u64, 2);
    push_padded(out, c.minute as u64, 2);
    out.push('Z');
}

/// `YYYY/MM/DD`, the date folders of a key.
pub(crate) fn push_date_path(out: &mut String, secs: i64) {
    let c = civil(secs);
    push_padded(out, c.year as u64, 4);
    out.push('/');
    push_padded(out, c.month as u64, 2);
    out.push('/');
    push_padded(out, c.day as u64, 2);
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `Mar 1, 2024, 1:05:09 AM` — the Java-style dates many services put in response bodies.
pub(crate) fn push_java_date(out: &mut String, secs: i64) {
    let c = civil(secs);
    out.push_str(MONTHS[(c.month - 1) as usize]);
    out.push(' ');
    push_padded(out, c.day as u64, 1);
    out.push_str(", ");
    push_padded(out, c.year as u64, 4);
    out.push_str(", ");
    let h12 = match c.hour % 12 {
        0 => 12,
        h => h,
    };
    push_padded(out, h12 as u64, 1);
    out.push(':');
    push_padded(out, c.minute as u64, 2);
    out.push(':');
    push_padded(out, c.second as u64, 2);
    out.push_str(if c.hour < 12 { " AM" } else { " PM" });
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn matches_chrono() {
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..10_000 {
            let secs = rng.i64(-2_000_000_000..5_000_000_000);
            let t = Utc.timestamp_opt(secs, 0).unwrap();
            let mut s = String::new();
            push_iso(&mut s, secs);
            assert_eq!(s, t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            s.clear();
            push_compact_minute(&mut s, secs);
            assert_eq!(s, t.format("%Y%m%dT%H%MZ").to_string());
            s.clear();
            push_date_path(&mut s, secs);
            assert_eq!(s, t.format("%Y/%m/%d").to_string());
            s.clear();
            push_java_date(&mut s, secs);
            assert_eq!(s, t.format("%b %-d, %Y, %-I:%M:%S %p").to_string());
        }
    }
}
