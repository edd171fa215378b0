//! How far a unit's clock runs from the gateway's, so an operator sees a drifting unit.
//!
//! Each point the unit stamps itself gives one sample, `ts - arrival` (ms; positive: the
//! unit's clock runs ahead). Buffered uploads would read as a clock far behind, so only
//! points that arrived within [`FRESH_MS`] after their `ts` count (a clock ahead is always
//! counted: the decoder already refused stamps beyond its future allowance). The figure is
//! the median of the last [`SAMPLES`] samples: one late or early packet does not move it.

use std::collections::VecDeque;

/// A point that arrived more than this long (ms) after its `ts` is a buffered upload, not
/// a sample of the unit's clock.
pub const FRESH_MS: i64 = 60_000;

/// How many recent samples the median is taken over.
pub const SAMPLES: usize = 64;

/// The recent samples of one unit.
#[derive(Debug, Clone, Default)]
pub struct ClockSkew {
    samples: VecDeque<i64>,
}

impl ClockSkew {
    /// Takes one point the unit stamped `ts_ms` that arrived at `arrival_ms` (both ms since
    /// the Unix epoch).
    pub fn observe(&mut self, ts_ms: u64, arrival_ms: u64) {
        let offset = i64::try_from(i128::from(ts_ms) - i128::from(arrival_ms)).unwrap_or(0);
        if offset < -FRESH_MS {
            return;
        }
        if self.samples.len() == SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(offset);
    }

    /// The median of the recent samples, ms (positive: the unit's clock runs ahead of the
    /// gateway's); `None` before the first sample.
    pub fn offset_ms(&self) -> Option<i64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<i64> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        Some(sorted[sorted.len() / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn a_clock_four_minutes_ahead_reads_plus_four_minutes() {
        let mut skew = ClockSkew::default();
        for i in 0..10 {
            skew.observe(NOW + 240_000 + i, NOW + i);
        }
        assert_eq!(skew.offset_ms(), Some(240_000));
    }

    #[test]
    fn buffered_uploads_do_not_count_and_one_outlier_does_not_move_it() {
        let mut skew = ClockSkew::default();
        assert_eq!(skew.offset_ms(), None);
        skew.observe(NOW - 3_600_000, NOW);
        assert_eq!(
            skew.offset_ms(),
            None,
            "an hour-old point is a buffered upload"
        );
        for _ in 0..5 {
            skew.observe(NOW - 2_000, NOW);
        }
        skew.observe(NOW - 59_000, NOW);
        assert_eq!(skew.offset_ms(), Some(-2_000), "a clock two seconds behind");
    }

    #[test]
    fn only_the_recent_samples_count() {
        let mut skew = ClockSkew::default();
        for _ in 0..SAMPLES {
            skew.observe(NOW + 5_000, NOW);
        }
        for _ in 0..SAMPLES {
            skew.observe(NOW, NOW);
        }
        assert_eq!(skew.offset_ms(), Some(0), "the unit's clock was corrected");
    }
}
