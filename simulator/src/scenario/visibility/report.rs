//! What a visibility run found, stated once in the report model (`crate::report`) for
//! people (text, page) and scripts (JSON, `is_clean`). Kept apart from the run itself so
//! its rules can be tested without a gateway.

use std::fmt;

use serde::Serialize;

use crate::api::{AccountId, AssetId, GrantId};
use crate::report::html::{
    memory_chart, percentile_chart, rate_chart, timeline_figures, MEMORY_CAPTION,
};
use crate::report::svg::{Series, PALETTE};
use crate::report::{Chart, Check, ScenarioReport, Section};
use crate::scenario::sharing::cutoff::{violation_section, Violation};
use crate::scenario::Timeline;
use crate::stats::Percentiles;

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
    /// Removals answered with the contract's 204.
    pub fn removals_answered_204(&self) -> usize {
        self.removals
            .iter()
            .filter(|removal| removal.status == Some(204))
            .count()
    }

    /// Each removal's round trip in the order the removals were sent.
    fn removal_chart(&self) -> Chart {
        let title = "Removal round trip, in removal order";
        let points: Vec<(f64, f64)> = self
            .removals
            .iter()
            .enumerate()
            .filter_map(|(index, removal)| {
                removal
                    .latency_us()
                    .map(|micros| ((index + 1) as f64, micros as f64 / 1_000.0))
            })
            .collect();
        if points.is_empty() {
            return Chart::missing(title, "no removal was answered");
        }
        let series = vec![Series {
            name: "DELETE round trip".to_owned(),
            color: PALETTE[1],
            points,
        }];
        Chart::lines(title, "removal number", "milliseconds", series)
    }
}

impl ScenarioReport for VisibilityReport {
    const SCENARIO: &'static str = "visibility";

    fn run_id(&self) -> &str {
        &self.run_id
    }

    fn errors(&self) -> &[String] {
        &self.errors
    }

    fn checks(&self) -> Vec<Check> {
        vec![
            Check::holds(
                "every removal answered 204",
                !self.removals.is_empty() && self.removals_answered_204() == self.removals.len(),
                format!(
                    "{} of {} removals",
                    self.removals_answered_204(),
                    self.removals.len()
                ),
            ),
            Check::holds(
                "no point past a cut-off",
                self.violations == 0,
                format!("{} violations", self.violations),
            ),
        ]
    }

    fn headline(&self) -> String {
        format!(
            "visibility run {} (owner {}, seed {}): {} units, {} grantees, {} grants live at start",
            self.run_id,
            self.account_id,
            self.seed,
            self.units,
            self.grantees,
            self.grants_live_at_start
        )
    }

    fn clean_means(&self) -> String {
        "every removal answered 204 and no point sent after an answer reached the removed \
         grantee"
            .into()
    }

    fn sections(&self) -> Vec<Section> {
        let figures = Section::new("Figures")
            .figure("owner account", &self.account_id)
            .figure("removal order seed", self.seed)
            .figure("units", self.units)
            .figure("grantees", self.grantees)
            .figure("grants live at start", self.grants_live_at_start)
            .figure("removals sent", self.removals.len())
            .figure("removals answered 204", self.removals_answered_204())
            .figure("violations (points past a cut-off)", self.violations)
            .figure("points sent", self.points_sent)
            .figure("points acknowledged", self.points_acked)
            .figure("points delivered to grantees", self.points_delivered);
        let mut sections = vec![timeline_figures(
            figures,
            &self.timeline,
            "points delivered",
        )];
        if !self.violation_examples.is_empty() {
            sections.push(violation_section(&self.violation_examples));
        }
        let latencies = [
            ("removal round trip", &self.removal_latency),
            ("send→grantee stream", &self.delivery_latency),
        ];
        sections.push(
            Section::new("Latency")
                .latencies(&latencies)
                .chart(
                    percentile_chart("Latency percentiles", &latencies),
                    "A removal's DELETE round trip (the grantee is cut off when it answers), \
                     and a point's way from the unit to a grantee's live stream.",
                )
                .chart(
                    self.removal_chart(),
                    "Each removal's round trip in the order the removals were sent; removals \
                     without an answer are left out.",
                ),
        );
        sections.push(
            Section::new("Over time")
                .chart(
                    rate_chart(
                        "Points delivered to grantees per second",
                        "delivered/s",
                        &self.timeline,
                    ),
                    "Points on the grantees' live streams, counted by the stream readers once \
                     a second from the units' first tick until the streams close; it falls as \
                     the grants are removed.",
                )
                .chart(memory_chart(&self.timeline), MEMORY_CAPTION),
        );
        sections
    }
}

impl fmt::Display for VisibilityReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&crate::report::text(self))
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
        let spoilers: [fn(&mut VisibilityReport); 5] = [
            |report| report.violations = 1,
            |report| report.errors.push("x".into()),
            |report| report.removals = vec![removal(Some(204)), removal(Some(200))],
            |report| report.removals = vec![removal(None)],
            |report| report.removals.clear(),
        ];
        crate::report::assert_each_spoils(report, &spoilers);
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
        assert!(text.contains("removals sent: 1"), "{text}");
        assert!(text.contains("removals answered 204: 1"), "{text}");
        assert!(text.contains("acc2 got a0: sent 1.5 ms after"), "{text}");
        assert!(text.contains("no point past a cut-off: FAILED"), "{text}");
        assert!(text.contains("errors: none"), "{text}");
    }

    #[test]
    fn page_has_its_charts() {
        let measured = VisibilityReport {
            removals: vec![removal(Some(204)), removal(None), removal(Some(204))],
            timeline: Timeline::steady(4, 50.0, Some(7)),
            ..report()
        };
        let page = crate::report::page(&measured);
        assert!(page.contains("Fleetgate visibility run abc"));
        assert_eq!(
            page.matches("<svg").count(),
            4,
            "latency, removals, rate, memory"
        );
        assert_eq!(
            page.matches("<polyline").count(),
            3,
            "removals, rate, memory"
        );
        assert!(page.contains("no latency samples"));
        assert!(page.contains("VmRSS of pid 7"));
    }
}
