//! What a revoke-storm run found, stated once in the report model (`crate::report`) for
//! people (text, page) and scripts (JSON, `is_clean`), kept apart from the run so its
//! verdict can be tested without a gateway.

use std::fmt;

use serde::Serialize;

use super::storm::{RemovalCall, RevokeMode};
use crate::api::AccountId;
use crate::report::html::{
    memory_chart, percentile_chart, rate_chart, timeline_figures, MEMORY_CAPTION,
};
use crate::report::{Check, ScenarioReport, Section};
use crate::scenario::sharing::cutoff::{violation_section, Violation};
use crate::scenario::Timeline;
use crate::stats::Percentiles;

/// The outcome of one revoke-storm run.
#[derive(Debug, Clone, Serialize)]
pub struct RevokeStormReport {
    pub run_id: String,
    /// The owner account the run created; its assets are `sim-{run_id}-a{index}`.
    pub account_id: AccountId,
    /// Seeds the removal order, to repeat a run.
    pub seed: u64,
    pub mode: RevokeMode,
    /// Removal calls in flight at once.
    pub concurrency: usize,
    /// Units that connected and published.
    pub units: usize,
    pub grantees: usize,
    /// `units × grantees`: the grants the run created and must take back.
    pub grants_expected: u64,
    /// Active grants of the run listed just before the storm.
    pub grants_live_at_start: u64,
    /// Grants whose removal call succeeded.
    pub grants_removed: u64,
    /// Active grants still listed after the storm.
    pub grants_live_after: u64,
    /// Every call, in the order the answers came back.
    pub calls: Vec<RemovalCall>,
    /// Round trips of the successful calls.
    pub removal_latency: Percentiles,
    /// From the first removal request to the last answer, in seconds.
    pub storm_s: f64,
    /// `grants_removed / storm_s`.
    pub removals_per_sec: f64,
    /// Points delivered to a grantee although the unit sent them after that pair's removal
    /// had been answered.
    pub violations: u64,
    pub violation_examples: Vec<Violation>,
    pub points_sent: u64,
    pub points_acked: u64,
    /// Points of granted pairs that reached the grantees' streams, before or after removal.
    pub points_delivered: u64,
    /// Grantee history requests for the removed assets answered 404, and those that were not.
    pub history_refused: u64,
    pub history_not_refused: u64,
    /// Acknowledged points absent from the owner's history, and repeated rows there.
    pub owner_missing: u64,
    pub owner_duplicates: u64,
    /// Removals per second and gateway memory, sampled each second while the units stream.
    pub timeline: Timeline,
    pub errors: Vec<String>,
}

impl ScenarioReport for RevokeStormReport {
    const SCENARIO: &'static str = "revoke-storm";

    fn run_id(&self) -> &str {
        &self.run_id
    }

    fn errors(&self) -> &[String] {
        &self.errors
    }

    fn checks(&self) -> Vec<Check> {
        let failed_calls = self.calls.iter().filter(|call| !call.succeeded).count();
        vec![
            Check::holds(
                "every grant live before the storm",
                self.grants_expected > 0 && self.grants_live_at_start == self.grants_expected,
                format!(
                    "{} of {} listed",
                    self.grants_live_at_start, self.grants_expected
                ),
            ),
            Check::holds(
                "every grant removed as answered",
                self.grants_removed == self.grants_expected
                    && self.grants_live_after == 0
                    && failed_calls == 0,
                format!(
                    "{} removed, {} still live, {failed_calls} calls failed",
                    self.grants_removed, self.grants_live_after
                ),
            ),
            Check::holds(
                "no point past a cut-off",
                self.violations == 0,
                format!("{} violations", self.violations),
            ),
            Check::holds(
                "grantees locked out of history",
                self.history_refused == self.grants_expected && self.history_not_refused == 0,
                format!(
                    "{} answered 404, {} not",
                    self.history_refused, self.history_not_refused
                ),
            ),
            Check::holds(
                "the owner keeps every point",
                self.points_acked > 0 && self.owner_missing == 0 && self.owner_duplicates == 0,
                format!(
                    "{} acknowledged, {} missing, {} duplicates",
                    self.points_acked, self.owner_missing, self.owner_duplicates
                ),
            ),
        ]
    }

    fn headline(&self) -> String {
        format!(
            "revoke-storm run {} (owner {}, seed {}): {} units × {} grantees = {} grants, {} live at start",
            self.run_id,
            self.account_id,
            self.seed,
            self.units,
            self.grantees,
            self.grants_expected,
            self.grants_live_at_start
        )
    }

    fn clean_means(&self) -> String {
        "every grant removed as answered, no point crossed a cut-off, grantees locked out, \
         the owner keeps everything"
            .into()
    }

    fn sections(&self) -> Vec<Section> {
        let figures = Section::new("Figures")
            .figure("owner account", &self.account_id)
            .figure("seed", self.seed)
            .figure(
                "units × grantees",
                format!("{} × {}", self.units, self.grantees),
            )
            .figure("grants live at start", self.grants_live_at_start)
            .figure("removal mode", self.mode)
            .figure("calls in flight", self.concurrency)
            .figure("calls", self.calls.len())
            .figure("grants removed", self.grants_removed)
            .figure("grants still live after", self.grants_live_after)
            .figure("storm duration", format!("{:.2} s", self.storm_s))
            .figure(
                "removals (mean)",
                format!("{:.1} grants/s", self.removals_per_sec),
            )
            .figure(
                "points sent / acknowledged",
                format!("{} / {}", self.points_sent, self.points_acked),
            )
            .figure("points delivered to grantees", self.points_delivered)
            .figure("points past a cut-off", self.violations);
        let figures = timeline_figures(figures, &self.timeline, "grants removed");
        let history = Section::new("History after the storm")
            .figure("grantee requests answered 404", self.history_refused)
            .figure("grantee requests not refused", self.history_not_refused)
            .figure("owner: acknowledged points missing", self.owner_missing)
            .figure("owner: duplicate rows", self.owner_duplicates);
        let latencies = [("removal call round trip", &self.removal_latency)];
        let latency = Section::new("Latency")
            .latencies(&latencies)
            .chart(
                rate_chart(
                    "Throughput: grants removed per second",
                    "removed/s",
                    &self.timeline,
                ),
                "Grants whose removal call had been answered, counted once a second from the \
                 first scheduled send; the storm is the spike.",
            )
            .chart(
                percentile_chart("Removal latency percentiles", &latencies),
                "From sending a removal call to its answer, with the others in flight beside \
                 it.",
            )
            .chart(memory_chart(&self.timeline), MEMORY_CAPTION);
        let mut sections = vec![figures];
        if !self.violation_examples.is_empty() {
            sections.push(violation_section(&self.violation_examples));
        }
        sections.extend([history, latency]);
        sections
    }
}

impl fmt::Display for RevokeStormReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&crate::report::text(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> RevokeStormReport {
        let call = RemovalCall {
            grantee: AccountId::new("g0"),
            grant_id: None,
            grants: 2,
            requested_us: 10,
            answered_us: Some(20),
            succeeded: true,
            status: None,
        };
        RevokeStormReport {
            run_id: "s1".into(),
            account_id: AccountId::new("owner"),
            seed: 3,
            mode: RevokeMode::Bulk,
            concurrency: 2,
            units: 2,
            grantees: 2,
            grants_expected: 4,
            grants_live_at_start: 4,
            grants_removed: 4,
            grants_live_after: 0,
            calls: vec![call.clone(), call],
            removal_latency: Percentiles {
                samples: 2,
                p50_us: 10,
                p90_us: 10,
                p99_us: 10,
                p999_us: 10,
                max_us: 10,
            },
            storm_s: 0.5,
            removals_per_sec: 8.0,
            violations: 0,
            violation_examples: Vec::new(),
            points_sent: 50,
            points_acked: 50,
            points_delivered: 60,
            history_refused: 4,
            history_not_refused: 0,
            owner_missing: 0,
            owner_duplicates: 0,
            timeline: Timeline::steady(3, 2.0, None),
            errors: Vec::new(),
        }
    }

    #[test]
    fn any_problem_makes_the_run_not_clean() {
        let spoilers: [fn(&mut RevokeStormReport); 10] = [
            |report| report.violations = 1,
            |report| report.grants_live_at_start = 3,
            |report| report.grants_removed = 3,
            |report| report.grants_live_after = 1,
            |report| report.calls[0].succeeded = false,
            |report| report.history_refused = 3,
            |report| report.history_not_refused = 1,
            |report| report.owner_missing = 1,
            |report| report.owner_duplicates = 1,
            |report| report.errors.push("x".into()),
        ];
        crate::report::assert_each_spoils(report, &spoilers);
    }

    #[test]
    fn page_is_self_contained_with_three_charts() {
        let page = crate::report::page(&report());
        crate::report::assert_self_contained(&page);
        assert_eq!(page.matches("<svg").count(), 3);
        assert!(page.contains("not measured (no --gateway-pid given)"));
        assert!(page.contains("one bulk remove per grantee"));
        let json = serde_json::to_value(report()).expect("json");
        assert_eq!(json["mode"], "bulk");
        assert!(report()
            .to_string()
            .contains("clean: every grant removed as answered"));
    }
}
