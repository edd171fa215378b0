//! What a fan-out run found, stated once in the report model (`crate::report`) for people
//! (text, page) and scripts (JSON, `is_clean`), kept apart from the run so its verdict can
//! be tested without a gateway.

use std::fmt;

use serde::Serialize;

use crate::api::AccountId;
use crate::report::html::{
    memory_chart, percentile_chart, rate_chart, timeline_figures, MEMORY_CAPTION,
};
use crate::report::{Check, ScenarioReport, Section};
use crate::scenario::Timeline;
use crate::stats::Percentiles;

/// The outcome of one fan-out run.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    pub run_id: String,
    /// The owner account the run created; its assets are `sim-{run_id}-a{index}`.
    pub account_id: AccountId,
    /// The sub-account granted nothing, whose stream must stay silent.
    pub outsider_id: AccountId,
    /// Units that connected and published.
    pub units: usize,
    pub grantees: usize,
    pub points_sent: u64,
    pub points_acked: u64,
    /// `points_acked × grantees`: deliveries the contract owes.
    pub deliveries_expected: u64,
    /// Deliveries to grantees' streams, duplicates included.
    pub deliveries: u64,
    /// Acknowledged (grantee, point) pairs never delivered.
    pub missing: u64,
    /// Deliveries beyond the first of a point to a grantee.
    pub duplicates: u64,
    /// Points that reached the outsider.
    pub leaked: u64,
    /// Points of assets outside the run that reached a grantee.
    pub foreign: u64,
    /// Points the run could not attribute (no readable `seq`/`sent_us`).
    pub untracked: u64,
    /// From the unit's send to each grantee's stream, over every delivery.
    pub publish_to_sse: Percentiles,
    /// Between the first and the last grantee receiving the same point.
    pub grantee_spread: Percentiles,
    /// From the first scheduled send until the streams had caught up, in seconds.
    pub elapsed_s: f64,
    /// `deliveries / elapsed_s`.
    pub deliveries_per_sec: f64,
    /// Grantees whose history of every asset was read back.
    pub history_grantees: usize,
    /// Acknowledged points those histories lacked, summed over grantees and assets.
    pub history_missing: u64,
    /// History rows beyond the first for the same point.
    pub history_duplicates: u64,
    /// The outsider's history requests answered 404, and those that were not.
    pub outsider_refused: u64,
    pub outsider_not_refused: u64,
    /// Deliveries per second and gateway memory, sampled each second.
    pub timeline: Timeline,
    pub errors: Vec<String>,
}

impl ScenarioReport for FanoutReport {
    const SCENARIO: &'static str = "fanout";

    fn run_id(&self) -> &str {
        &self.run_id
    }

    fn errors(&self) -> &[String] {
        &self.errors
    }

    fn checks(&self) -> Vec<Check> {
        vec![
            Check::holds(
                "every point acknowledged",
                self.points_sent > 0 && self.points_acked == self.points_sent,
                format!("{} of {} sent", self.points_acked, self.points_sent),
            ),
            Check::holds(
                "every grantee got every point once",
                self.missing == 0 && self.duplicates == 0,
                format!("{} missing, {} duplicates", self.missing, self.duplicates),
            ),
            Check::holds(
                "nobody else got a point",
                self.leaked == 0 && self.foreign == 0 && self.untracked == 0,
                format!(
                    "{} leaked, {} foreign, {} untracked",
                    self.leaked, self.foreign, self.untracked
                ),
            ),
            Check::holds(
                "grantee history complete",
                self.history_missing == 0 && self.history_duplicates == 0,
                format!(
                    "{} missing, {} duplicates",
                    self.history_missing, self.history_duplicates
                ),
            ),
            Check::holds(
                "the outsider refused",
                self.outsider_refused > 0 && self.outsider_not_refused == 0,
                format!(
                    "{} answered 404, {} not",
                    self.outsider_refused, self.outsider_not_refused
                ),
            ),
        ]
    }

    fn headline(&self) -> String {
        format!(
            "fanout run {} (owner {}): {} units, each asset shared with {} grantees",
            self.run_id, self.account_id, self.units, self.grantees
        )
    }

    fn clean_means(&self) -> String {
        "every acknowledged point reached every grantee exactly once and nobody else".into()
    }

    fn sections(&self) -> Vec<Section> {
        let figures = Section::new("Figures")
            .figure("owner account", &self.account_id)
            .figure("units (assets)", self.units)
            .figure("grantees per asset", self.grantees)
            .figure("points sent", self.points_sent)
            .figure("points acknowledged", self.points_acked)
            .figure("deliveries expected", self.deliveries_expected)
            .figure("deliveries", self.deliveries)
            .figure("missing", self.missing)
            .figure("duplicates", self.duplicates)
            .figure(
                &format!("leaked to {} (granted nothing)", self.outsider_id),
                self.leaked,
            )
            .figure(
                "foreign / untracked",
                format!("{} / {}", self.foreign, self.untracked),
            )
            .figure("elapsed", format!("{:.2} s", self.elapsed_s))
            .figure(
                "deliveries (mean)",
                format!("{:.1} /s", self.deliveries_per_sec),
            );
        let history = Section::new("History")
            .figure("grantees whose history was read", self.history_grantees)
            .figure("acknowledged points missing there", self.history_missing)
            .figure("duplicate rows there", self.history_duplicates)
            .figure("outsider requests answered 404", self.outsider_refused)
            .figure("outsider requests not refused", self.outsider_not_refused);
        let latencies = [
            ("publish→SSE (every delivery)", &self.publish_to_sse),
            ("first→last grantee", &self.grantee_spread),
        ];
        let latency = Section::new("Latency")
            .latencies(&latencies)
            .chart(
                rate_chart(
                    "Throughput: deliveries to grantees per second",
                    "deliveries/s",
                    &self.timeline,
                ),
                "Points arriving on the grantees' live streams, counted once a second.",
            )
            .chart(
                percentile_chart("Latency percentiles", &latencies),
                "From the unit's send to each grantee's stream, and between the first and the \
                 last grantee to receive the same point.",
            )
            .chart(memory_chart(&self.timeline), MEMORY_CAPTION);
        vec![
            timeline_figures(figures, &self.timeline, "deliveries"),
            history,
            latency,
        ]
    }
}

impl fmt::Display for FanoutReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&crate::report::text(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> FanoutReport {
        let latency = Percentiles {
            samples: 40,
            p50_us: 2_000,
            p90_us: 4_000,
            p99_us: 8_000,
            p999_us: 9_000,
            max_us: 9_500,
        };
        FanoutReport {
            run_id: "f1".into(),
            account_id: AccountId::new("owner"),
            outsider_id: AccountId::new("out"),
            units: 2,
            grantees: 2,
            points_sent: 20,
            points_acked: 20,
            deliveries_expected: 40,
            deliveries: 40,
            missing: 0,
            duplicates: 0,
            leaked: 0,
            foreign: 0,
            untracked: 0,
            publish_to_sse: latency,
            grantee_spread: latency,
            elapsed_s: 2.0,
            deliveries_per_sec: 20.0,
            history_grantees: 2,
            history_missing: 0,
            history_duplicates: 0,
            outsider_refused: 2,
            outsider_not_refused: 0,
            timeline: Timeline::steady(3, 20.0, Some(7)),
            errors: Vec::new(),
        }
    }

    #[test]
    fn any_problem_makes_the_run_not_clean() {
        let spoilers: [fn(&mut FanoutReport); 10] = [
            |report| report.missing = 1,
            |report| report.duplicates = 1,
            |report| report.leaked = 1,
            |report| report.foreign = 1,
            |report| report.untracked = 1,
            |report| report.history_missing = 1,
            |report| report.outsider_not_refused = 1,
            |report| report.outsider_refused = 0,
            |report| report.points_acked = 19,
            |report| report.errors.push("x".into()),
        ];
        crate::report::assert_each_spoils(report, &spoilers);
    }

    #[test]
    fn page_is_self_contained_with_three_charts() {
        let mut report = report();
        report.errors.push("grantee <g> said \"no\"".into());
        let page = crate::report::page(&report);
        crate::report::assert_self_contained(&page);
        assert_eq!(page.matches("<svg").count(), 3);
        assert_eq!(page.matches("<polyline").count(), 2, "rate and memory");
        assert!(page.contains("first→last grantee"));
        assert!(page.contains("grantee &lt;g&gt; said"));
        assert!(page.contains("NOT clean"));
        let text = report.to_string();
        assert!(text.contains("deliveries expected: 40") && text.contains("NOT clean"));
    }
}
