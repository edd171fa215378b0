//! What a visibility run found, in a form both people (`Display`) and scripts (`Serialize`,
//! `is_clean`) can judge. Kept apart from the run itself so its rules can be tested without
//! a gateway.

use std::fmt;

use serde::Serialize;

use super::cutoff::Violation;
use crate::api::{AccountId, AssetId, GrantId};
use crate::scenario::Timeline;
use crate::stats::{format_us, Percentiles};

/// One `DELETE /v1/visibility/grants/{id}` of the run, in the order they were sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovalRecord {
    pub grant_id: GrantId,
    pub grantee: AccountId,
    pub asset_id: AssetId,
    /// When the request was sent, µs since the epoch.
    pub requested_us: u64,
    /// When the answer arrived, µs since the epoch; `None` when none did (transport error).
    pub answered_us: Option<u64>,
    /// The HTTP status of the answer; the contract says 204.
    pub status: Option<u16>,
}

impl RemovalRecord {
    /// The round trip, when an answer arrived.
    pub fn latency_us(&self) -> Option<u64> {
        self.answered_us
            .map(|answered| answered.saturating_sub(self.requested_us))
    }
}

/// The outcome of one visibility run.
#[derive(Debug, Clone, Serialize)]
pub struct VisibilityReport {
    pub run_id: String,
    /// The owner account the run created; its assets are `sim-{run_id}-a{index}`.
    pub account_id: AccountId,
    /// The seed of the removal order, to repeat it (`VisibilityConfig::seed`).
    pub seed: u64,
    /// Units that connected and published.
    pub units: usize,
    pub grantees: usize,
    /// Active grants of the run's assets to its grantees, listed just before the first
    /// removal; `units × grantees` when every grant took.
    pub grants_live_at_start: u64,
    pub removals: Vec<RemovalRecord>,
    /// Round trips of the removals that succeeded.
    pub removal_latency: Percentiles,
    /// Points delivered to a grantee although the unit sent them after that grant's removal
    /// had been answered.
    pub violations: u64,
    /// The first few violations in full.
    pub violation_examples: Vec<Violation>,
    pub points_sent: u64,
    pub points_acked: u64,
    /// Points of granted pairs that reached the grantees' streams, before or after removal.
    pub points_delivered: u64,
    /// Unit send → the point on a grantee's live stream, over every delivered point that
    /// carried its send time (both clocks are the simulator's).
    pub delivery_latency: Percentiles,
    /// Points delivered on the grantees' live streams per second, from the units' first
    /// tick until the streams closed, and the gateway's memory when its pid was given.
    pub timeline: Timeline,
    pub errors: Vec<String>,
}

impl VisibilityReport {
    /// Nothing went wrong, no point crossed a cut-off, and every removal was answered 204.
    /// A run that removed nothing proves nothing, so it is not clean either.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
            && self.violations == 0
            && !self.removals.is_empty()
            && self
                .removals
                .iter()
                .all(|removal| removal.status == Some(204))
    }

    /// Removals the gateway answered with exactly 204.
    pub fn removals_answered_204(&self) -> usize {
        self.removals
            .iter()
            .filter(|removal| removal.status == Some(204))
            .count()
    }
}

impl fmt::Display for VisibilityReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            formatter,
            "visibility run {} (owner {}, seed {}): {} units, {} grantees, {} grants live at start",
            self.run_id,
            self.account_id,
            self.seed,
            self.units,
            self.grantees,
            self.grants_live_at_start
        )?;
        writeln!(
            formatter,
            "  removals:   {} sent, {} answered 204; latency {}",
            self.removals.len(),
            self.removals_answered_204(),
            self.removal_latency
        )?;
        writeln!(
            formatter,
            "  points:     {} sent, {} acknowledged, {} delivered to grantees",
            self.points_sent, self.points_acked, self.points_delivered
        )?;
        writeln!(formatter, "  delivery:   {}", self.delivery_latency)?;
        writeln!(formatter, "  violations: {}", self.violations)?;
        for violation in &self.violation_examples {
            writeln!(
                formatter,
                "    - {} got {} sent {} after its removal was answered",
                violation.grantee,
                violation.asset_id,
                format_us(
                    violation
                        .sent_us
                        .saturating_sub(violation.removal_answered_us)
                )
            )?;
        }
        if self.errors.is_empty() {
            write!(formatter, "  errors: none")
        } else {
            write!(formatter, "  errors ({}):", self.errors.len())?;
            for error in &self.errors {
                write!(formatter, "\n    - {error}")?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn removal(status: Option<u16>) -> RemovalRecord {
        RemovalRecord {
            grant_id: GrantId::new("g1"),
            grantee: AccountId::new("acc2"),
            asset_id: AssetId::new("a0"),
            requested_us: 1_000,
            answered_us: status.map(|_| 3_500),
            status,
        }
    }

    pub(crate) fn report() -> VisibilityReport {
        VisibilityReport {
            run_id: "abc".into(),
            account_id: AccountId::new("acc1"),
            seed: 9,
            units: 1,
            grantees: 1,
            grants_live_at_start: 1,
            removals: vec![removal(Some(204))],
            removal_latency: Percentiles::default(),
            violations: 0,
            violation_examples: Vec::new(),
            points_sent: 10,
            points_acked: 10,
            points_delivered: 5,
            delivery_latency: Percentiles::default(),
            timeline: Timeline::default(),
            errors: Vec::new(),
        }
    }

    #[test]
    fn clean_report_and_its_failure_modes() {
        assert!(report().is_clean());
        assert!(!VisibilityReport {
            violations: 1,
            ..report()
        }
        .is_clean());
        assert!(!VisibilityReport {
            errors: vec!["x".into()],
            ..report()
        }
        .is_clean());
        assert!(!VisibilityReport {
            removals: vec![removal(Some(204)), removal(Some(200))],
            ..report()
        }
        .is_clean());
        assert!(!VisibilityReport {
            removals: vec![removal(None)],
            ..report()
        }
        .is_clean());
        assert!(!VisibilityReport {
            removals: Vec::new(),
            ..report()
        }
        .is_clean());
    }

    #[test]
    fn removal_latency_is_the_round_trip() {
        assert_eq!(removal(Some(204)).latency_us(), Some(2_500));
        assert_eq!(removal(None).latency_us(), None);
    }

    #[test]
    fn report_serializes_and_displays() {
        let json = serde_json::to_value(report()).expect("json");
        assert_eq!(json["removals"][0]["status"], 204);
        assert_eq!(json["removal_latency"]["samples"], 0);
        let mut failing = report();
        failing.violations = 1;
        failing.violation_examples.push(Violation {
            grantee: AccountId::new("acc2"),
            asset_id: AssetId::new("a0"),
            sent_us: 5_000,
            removal_answered_us: 3_500,
            received_us: 6_000,
        });
        let text = failing.to_string();
        assert!(text.contains("1 sent, 1 answered 204"), "{text}");
        assert!(text.contains("acc2 got a0 sent 1.5 ms after"), "{text}");
        assert!(text.contains("errors: none"), "{text}");
    }
}
