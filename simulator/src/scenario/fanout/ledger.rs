//! The pure accounting of a fan-out run: which grantee got which point how often, how long
//! each delivery took, and how far apart the first and the last grantee got the same point.
//! Kept free of I/O so "exactly once to every grantee, never to anyone else" can be tested
//! exactly.
//!
//! A point is named by its asset and the unit's sequence number (`sensors.seq`). Counts are
//! one byte per (grantee, asset, point), saturating, which is what bounds the run's size
//! (`FanoutConfig::validate` caps grantees × units × points).

use std::collections::HashMap;

use crate::api::{AccountId, AssetId, Point};
use crate::stats::{LatencyRecorder, Percentiles};

/// How many examples of each kind of problem the tally keeps for the error list.
const EXAMPLES: usize = 5;

/// First and last arrival of one point over all grantees, µs since the epoch; `0` = none.
#[derive(Debug, Clone, Copy, Default)]
struct Spread {
    first_us: u64,
    last_us: u64,
}

/// Shared by every grantee's stream reader behind one mutex.
#[derive(Debug)]
pub(crate) struct FanoutLedger {
    grantees: Vec<AccountId>,
    asset_index: HashMap<AssetId, usize>,
    /// The most points a unit sends: sequence numbers at or beyond it are not this run's.
    points_per_unit: u64,
    /// `counts[grantee][asset][seq]`: deliveries of that point to that grantee.
    counts: Vec<Vec<Vec<u8>>>,
    /// `spread[asset][seq]`.
    spread: Vec<Vec<Spread>>,
    latency: LatencyRecorder,
    delivered: u64,
    foreign: u64,
    untracked: u64,
    leaked: u64,
    examples: Vec<String>,
}

/// What the ledger found, once the acknowledgements are known.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FanoutTally {
    /// Deliveries to granted pairs, duplicates included.
    pub(crate) delivered: u64,
    /// Acknowledged points × grantees: what must be delivered.
    pub(crate) expected: u64,
    /// (grantee, acknowledged point) pairs never delivered.
    pub(crate) missing: u64,
    /// Deliveries beyond the first of the same point to the same grantee.
    pub(crate) duplicates: u64,
    /// Points of assets outside the run that reached a grantee.
    pub(crate) foreign: u64,
    /// Points without readable `seq`/`sent_us`, or with a `seq` the run never sent.
    pub(crate) untracked: u64,
    /// Points that reached the account that holds no grant.
    pub(crate) leaked: u64,
    pub(crate) publish_to_sse: Percentiles,
    /// Last minus first grantee's arrival, over points every grantee received.
    pub(crate) grantee_spread: Percentiles,
    pub(crate) examples: Vec<String>,
}

impl FanoutLedger {
    /// Every grantee is granted every asset; each unit sends at most `points_per_unit`.
    pub(crate) fn new(grantees: Vec<AccountId>, assets: &[AssetId], points_per_unit: u64) -> Self {
        let asset_index = assets
            .iter()
            .enumerate()
            .map(|(index, asset)| (asset.clone(), index))
            .collect();
        let counts = grantees
            .iter()
            .map(|_| vec![Vec::new(); assets.len()])
            .collect();
        Self {
            grantees,
            asset_index,
            points_per_unit,
            counts,
            spread: vec![Vec::new(); assets.len()],
            latency: LatencyRecorder::new(),
            delivered: 0,
            foreign: 0,
            untracked: 0,
            leaked: 0,
            examples: Vec::new(),
        }
    }

    /// A point grantee `grantee` (index into the run's grantees) received.
    pub(crate) fn observe(
        &mut self,
        grantee: usize,
        point: &Point,
        sent_us: Option<u64>,
        received_us: u64,
    ) {
        let Some(&asset) = self.asset_index.get(&point.asset_id) else {
            self.foreign += 1;
            let grantee_id = self.grantees.get(grantee).cloned();
            self.example(format!(
                "grantee {} received a point of {}, which the run never granted",
                grantee_id.map_or_else(|| "?".to_owned(), |id| id.to_string()),
                point.asset_id
            ));
            return;
        };
        let Some(per_asset) = self.counts.get_mut(grantee) else {
            self.untracked += 1;
            return;
        };
        let seq = point.seq().filter(|seq| *seq < self.points_per_unit);
        let (Some(seq), Some(sent_us)) = (seq, sent_us) else {
            self.untracked += 1;
            return;
        };
        // `seq < points_per_unit`, which validation keeps far below usize::MAX.
        let index = seq as usize;
        self.delivered += 1;
        self.latency.record_between(sent_us, received_us);
        let counts = &mut per_asset[asset];
        if counts.len() <= index {
            counts.resize(index + 1, 0);
        }
        counts[index] = counts[index].saturating_add(1);
        let spread = &mut self.spread[asset];
        if spread.len() <= index {
            spread.resize(index + 1, Spread::default());
        }
        let slot = &mut spread[index];
        if slot.first_us == 0 || received_us < slot.first_us {
            slot.first_us = received_us;
        }
        slot.last_us = slot.last_us.max(received_us);
    }

    /// A point the account without grants received: every one is a leak.
    pub(crate) fn leaked(&mut self, outsider: &AccountId, point: &Point) {
        self.leaked += 1;
        self.example(format!(
            "account {outsider}, granted nothing, received a point of {}",
            point.asset_id
        ));
    }

    /// Deliveries to granted pairs so far, for waiting until the streams caught up.
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Judges the run: `acknowledged[asset][seq]` says which points the broker acknowledged
    /// (assets in the order given to `new`); those must have reached every grantee once.
    pub(crate) fn finish(mut self, acknowledged: &[Vec<bool>]) -> FanoutTally {
        let mut spread = LatencyRecorder::new();
        let mut missing = 0u64;
        let mut duplicates = 0u64;
        let mut expected = 0u64;
        let mut missing_example = None;
        for (asset, acked) in acknowledged.iter().enumerate().take(self.spread.len()) {
            for (seq, &was_acked) in acked.iter().enumerate() {
                let mut received_by = 0usize;
                for (grantee, per_asset) in self.counts.iter().enumerate() {
                    let count = per_asset[asset].get(seq).copied().unwrap_or(0);
                    duplicates += u64::from(count.saturating_sub(1));
                    if count > 0 {
                        received_by += 1;
                    } else if was_acked {
                        missing += 1;
                        missing_example.get_or_insert((grantee, asset, seq));
                    }
                }
                if was_acked {
                    expected += self.counts.len() as u64;
                }
                if received_by == self.counts.len() && received_by > 0 {
                    if let Some(slot) = self.spread[asset].get(seq) {
                        spread.record_between(slot.first_us, slot.last_us);
                    }
                }
            }
            // Deliveries of points the unit's outcome does not cover (it failed before
            // reporting them) are still duplicates when repeated.
            for per_asset in &self.counts {
                for &count in per_asset[asset].iter().skip(acked.len()) {
                    duplicates += u64::from(count.saturating_sub(1));
                }
            }
        }
        if let Some((grantee, asset, seq)) = missing_example {
            let asset_id = self
                .asset_index
                .iter()
                .find(|(_, index)| **index == asset)
                .map(|(id, _)| id.to_string())
                .unwrap_or_default();
            self.example(format!(
                "{missing} acknowledged deliveries never arrived (e.g. grantee {} never got \
                 point {seq} of {asset_id})",
                self.grantees[grantee]
            ));
        }
        FanoutTally {
            delivered: self.delivered,
            expected,
            missing,
            duplicates,
            foreign: self.foreign,
            untracked: self.untracked,
            leaked: self.leaked,
            publish_to_sse: self.latency.percentiles(),
            grantee_spread: spread.percentiles(),
            examples: self.examples,
        }
    }

    fn example(&mut self, text: String) {
        if self.examples.len() < EXAMPLES {
            self.examples.push(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::telemetry::SEQ_SENSOR;

    fn point(asset: &str, seq: Option<u64>) -> Point {
        let mut sensors = BTreeMap::new();
        if let Some(seq) = seq {
            sensors.insert(SEQ_SENSOR.to_owned(), seq as f64);
        }
        Point {
            asset_id: AssetId::new(asset),
            ts: String::new(),
            ts_ms: 0,
            lat: None,
            lon: None,
            speed_kmh: None,
            heading: None,
            engine_hours: None,
            odometer_km: None,
            fuel_pct: None,
            ignition: None,
            sensors,
        }
    }

    fn ledger() -> FanoutLedger {
        FanoutLedger::new(
            vec![AccountId::new("g0"), AccountId::new("g1")],
            &[AssetId::new("a0"), AssetId::new("a1")],
            10,
        )
    }

    #[test]
    fn every_grantee_once_is_clean_and_spread_is_first_to_last() {
        let mut ledger = ledger();
        for seq in 0..3 {
            for asset in ["a0", "a1"] {
                ledger.observe(0, &point(asset, Some(seq)), Some(1_000), 1_500);
                ledger.observe(1, &point(asset, Some(seq)), Some(1_000), 1_900);
            }
        }
        let tally = ledger.finish(&[vec![true; 3], vec![true; 3]]);
        assert_eq!(tally.expected, 12);
        assert_eq!(tally.delivered, 12);
        assert_eq!((tally.missing, tally.duplicates, tally.leaked), (0, 0, 0));
        assert_eq!(tally.publish_to_sse.samples, 12);
        assert_eq!(tally.publish_to_sse.max_us, 900);
        assert_eq!(tally.grantee_spread.samples, 6);
        assert_eq!(tally.grantee_spread.max_us, 400);
        assert!(tally.examples.is_empty());
    }

    #[test]
    fn missing_and_duplicate_deliveries_are_counted_per_grantee() {
        let mut ledger = ledger();
        ledger.observe(0, &point("a0", Some(0)), Some(1), 2);
        ledger.observe(0, &point("a0", Some(0)), Some(1), 3);
        ledger.observe(0, &point("a0", Some(0)), Some(1), 4);
        // Point 1 of a0 reached grantee 1 only; it was not acknowledged, so its absence at
        // grantee 0 is no loss.
        ledger.observe(1, &point("a0", Some(1)), Some(1), 2);
        let tally = ledger.finish(&[vec![true, false], vec![]]);
        assert_eq!(tally.expected, 2);
        assert_eq!(tally.missing, 1, "grantee 1 never got point 0 of a0");
        assert_eq!(tally.duplicates, 2);
        assert_eq!(tally.grantee_spread.samples, 0, "no point reached both");
        assert!(tally.examples[0].contains("grantee g1 never got point 0 of a0"));
    }

    #[test]
    fn leaks_foreign_and_untracked_points_are_counted_apart() {
        let mut ledger = ledger();
        ledger.leaked(&AccountId::new("out"), &point("a0", Some(0)));
        ledger.observe(0, &point("elsewhere", Some(0)), Some(1), 2);
        ledger.observe(0, &point("a0", None), Some(1), 2);
        ledger.observe(0, &point("a0", Some(0)), None, 2);
        ledger.observe(0, &point("a0", Some(10)), Some(1), 2);
        ledger.observe(9, &point("a0", Some(0)), Some(1), 2);
        let tally = ledger.finish(&[vec![], vec![]]);
        assert_eq!(tally.leaked, 1);
        assert_eq!(tally.foreign, 1);
        assert_eq!(tally.untracked, 4);
        assert_eq!(tally.delivered, 0);
        assert_eq!(tally.examples.len(), 2);
        assert!(tally.examples[0].contains("granted nothing"));
    }
}
