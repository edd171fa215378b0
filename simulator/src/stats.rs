//! The arithmetic of a scenario report, kept free of I/O so it can be tested exactly:
//! latency percentiles from an HDR histogram, and the "every acknowledged point stored
//! exactly once" accounting by sequence number.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies above this (one hour) are clamped; anything that slow is a failure anyway.
const MAX_TRACKED_US: u64 = 3_600_000_000;
/// How many missing sequence numbers a tally keeps as examples for the error list.
const MISSING_EXAMPLES: usize = 5;

/// A latency distribution in microseconds. `samples == 0` means nothing was measured and
/// the other fields are meaningless zeros.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub samples: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    /// The 99.9th percentile: with fewer than a thousand samples it is close to the max.
    pub p999_us: u64,
    pub max_us: u64,
}

impl fmt::Display for Percentiles {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.samples == 0 {
            return formatter.write_str("no samples");
        }
        write!(
            formatter,
            "p50 {} · p99 {} · max {} ({} samples)",
            format_us(self.p50_us),
            format_us(self.p99_us),
            format_us(self.max_us),
            self.samples
        )
    }
}

/// Serializes a duration as seconds (a float), the unit every report's JSON uses.
pub fn as_seconds<S: serde::Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// Microseconds as a short human figure: `850 µs`, `12.3 ms`, `4.20 s`.
pub fn format_us(micros: u64) -> String {
    match micros {
        0..=999 => format!("{micros} µs"),
        1_000..=999_999 => format!("{:.1} ms", micros as f64 / 1_000.0),
        _ => format!("{:.2} s", micros as f64 / 1_000_000.0),
    }
}

/// Collects latencies; 3 significant digits, so p99 is exact to 0.1 %.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    histogram: Histogram<u64>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    pub fn new() -> Self {
        // Constant, valid bounds (low ≥ 1, high ≥ 2 × low, 3 significant figures): this
        // cannot fail at run time.
        let histogram = Histogram::new_with_bounds(1, MAX_TRACKED_US, 3)
            .expect("constant histogram bounds are valid");
        Self { histogram }
    }

    /// Records one latency. Negative latencies (clock skew between sender and receiver on
    /// different hosts) are recorded as zero, very large ones as the maximum tracked.
    pub fn record_us(&mut self, micros: i64) {
        let clamped = u64::try_from(micros).unwrap_or(0).min(MAX_TRACKED_US);
        self.histogram.saturating_record(clamped);
    }

    /// Records a measured duration (µs resolution; longer than an hour is the maximum).
    pub fn record_duration(&mut self, duration: Duration) {
        self.record_us(i64::try_from(duration.as_micros()).unwrap_or(i64::MAX));
    }

    /// Records the time from `sent_us` to `received_us` (both µs since the epoch).
    pub fn record_between(&mut self, sent_us: u64, received_us: u64) {
        let micros = i128::from(received_us) - i128::from(sent_us);
        self.record_us(i64::try_from(micros).unwrap_or(i64::MAX));
    }

    pub fn merge(&mut self, other: &LatencyRecorder) {
        // Same bounds on both sides, so adding cannot fail; saturate rather than panic.
        let _ = self.histogram.add(&other.histogram);
    }

    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    pub fn percentiles(&self) -> Percentiles {
        if self.histogram.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            samples: self.histogram.len(),
            p50_us: self.histogram.value_at_quantile(0.50),
            p90_us: self.histogram.value_at_quantile(0.90),
            p99_us: self.histogram.value_at_quantile(0.99),
            p999_us: self.histogram.value_at_quantile(0.999),
            max_us: self.histogram.max(),
        }
    }
}

/// The result of comparing what one unit had acknowledged with what history returned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SeqTally {
    /// Points the broker acknowledged: the ones that must be stored.
    pub acknowledged: u64,
    /// History rows that carried one of this run's sequence numbers, duplicates included.
    pub stored_rows: u64,
    /// Acknowledged points with no row at all.
    pub missing: u64,
    /// Rows beyond the first for the same sequence number.
    pub duplicates: u64,
    /// Distinct sequence numbers stored that were never acknowledged: sent but not (yet)
    /// acknowledged when the unit gave up waiting, or not sent by this run at all. Not an
    /// error by itself (QoS 1 allows storing before the PUBACK arrives).
    pub unacknowledged_stored: u64,
    /// A few missing sequence numbers, for the error message.
    pub missing_examples: Vec<u64>,
}

impl SeqTally {
    /// Compares `acknowledged[seq]` (one flag per point the unit sent) with the sequence
    /// numbers found in history. Sequence numbers outside `acknowledged` count as
    /// unacknowledged.
    pub fn compare(acknowledged: &[bool], stored: impl IntoIterator<Item = u64>) -> SeqTally {
        let mut rows_per_seq = vec![0u32; acknowledged.len()];
        let mut tally = SeqTally {
            acknowledged: acknowledged.iter().filter(|acked| **acked).count() as u64,
            ..SeqTally::default()
        };
        let mut foreign_seqs = std::collections::BTreeSet::new();
        for seq in stored {
            tally.stored_rows += 1;
            match usize::try_from(seq)
                .ok()
                .and_then(|index| rows_per_seq.get_mut(index))
            {
                Some(rows) => *rows = rows.saturating_add(1),
                None => {
                    if !foreign_seqs.insert(seq) {
                        tally.duplicates += 1;
                    }
                }
            }
        }
        tally.unacknowledged_stored = foreign_seqs.len() as u64;
        for (seq, (&rows, &acked)) in rows_per_seq.iter().zip(acknowledged).enumerate() {
            if rows > 1 {
                tally.duplicates += u64::from(rows - 1);
            }
            if rows == 0 && acked {
                tally.missing += 1;
                if tally.missing_examples.len() < MISSING_EXAMPLES {
                    tally.missing_examples.push(seq as u64);
                }
            }
            if rows > 0 && !acked {
                tally.unacknowledged_stored += 1;
            }
        }
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut recorder = LatencyRecorder::new();
        for micros in 1..=1000 {
            recorder.record_us(micros);
        }
        let summary = recorder.percentiles();
        assert_eq!(summary.samples, 1000);
        assert!((499..=501).contains(&summary.p50_us), "{summary:?}");
        assert!((989..=991).contains(&summary.p99_us), "{summary:?}");
        assert!((899..=901).contains(&summary.p90_us), "{summary:?}");
        assert!((998..=1000).contains(&summary.p999_us), "{summary:?}");
        assert_eq!(summary.max_us, 1000);
    }

    #[test]
    fn empty_recorder_reports_no_samples() {
        let summary = LatencyRecorder::new().percentiles();
        assert_eq!(summary, Percentiles::default());
        assert_eq!(summary.to_string(), "no samples");
    }

    #[test]
    fn skew_and_outliers_are_clamped() {
        let mut recorder = LatencyRecorder::new();
        recorder.record_between(2_000, 1_000);
        recorder.record_us(i64::MAX);
        let summary = recorder.percentiles();
        assert_eq!(summary.samples, 2);
        assert!(summary.max_us >= MAX_TRACKED_US);
    }

    #[test]
    fn durations_are_recorded_in_microseconds() {
        let mut recorder = LatencyRecorder::new();
        recorder.record_duration(Duration::from_micros(1_500));
        recorder.record_duration(Duration::from_secs(7_200));
        let summary = recorder.percentiles();
        assert_eq!(summary.samples, 2);
        assert!((1_499..=1_501).contains(&summary.p50_us), "{summary:?}");
        assert!(summary.max_us >= MAX_TRACKED_US, "clamped, not lost");
    }

    #[test]
    fn merge_adds_samples() {
        let mut first = LatencyRecorder::new();
        let mut second = LatencyRecorder::new();
        first.record_us(10);
        second.record_us(20);
        first.merge(&second);
        assert_eq!(first.len(), 2);
    }

    #[test]
    fn exact_storage_has_nothing_missing_or_duplicated() {
        let tally = SeqTally::compare(&[true, true, true], [2, 0, 1]);
        assert_eq!(tally.acknowledged, 3);
        assert_eq!(tally.stored_rows, 3);
        assert_eq!((tally.missing, tally.duplicates), (0, 0));
        assert_eq!(tally.unacknowledged_stored, 0);
    }

    #[test]
    fn missing_and_duplicates_are_counted() {
        let tally = SeqTally::compare(&[true, true, true, true], [0, 0, 0, 2]);
        assert_eq!(tally.missing, 2);
        assert_eq!(tally.missing_examples, vec![1, 3]);
        assert_eq!(tally.duplicates, 2);
        assert_eq!(tally.stored_rows, 4);
    }

    #[test]
    fn unacknowledged_points_may_be_stored_but_never_missing() {
        let tally = SeqTally::compare(&[true, false, false], [0, 1, 7, 7]);
        assert_eq!(tally.missing, 0);
        assert_eq!(tally.unacknowledged_stored, 2);
        assert_eq!(tally.duplicates, 1);
    }

    #[test]
    fn latency_formatting() {
        assert_eq!(format_us(850), "850 µs");
        assert_eq!(format_us(12_345), "12.3 ms");
        assert_eq!(format_us(4_200_000), "4.20 s");
    }
}
