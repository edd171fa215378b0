//! What a fan-out run found, for people (`Display`, the HTML page) and scripts
//! (`Serialize`, `is_clean`), kept apart from the run so its verdict and page can be tested
//! without a gateway.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::api::AccountId;
use crate::report::html::{
    memory_chart, percentile_chart, rate_chart, timeline_rows, Page, MEMORY_CAPTION,
};
use crate::report::{write_report, ReportError, WrittenReport};
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

impl FanoutReport {
    /// Every acknowledged point reached every grantee exactly once and nobody else, history
    /// agrees, and nothing went wrong.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
            && self.points_sent > 0
            && self.points_acked == self.points_sent
            && self.missing == 0
            && self.duplicates == 0
            && self.leaked == 0
            && self.foreign == 0
            && self.untracked == 0
            && self.history_missing == 0
            && self.history_duplicates == 0
            && self.outsider_not_refused == 0
            && self.outsider_refused > 0
    }
}

impl fmt::Display for FanoutReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            formatter,
            "fanout run {} (owner {}): {} units, each asset shared with {} grantees",
            self.run_id, self.account_id, self.units, self.grantees
        )?;
        writeln!(
            formatter,
            "  points:      {} sent, {} acknowledged",
            self.points_sent, self.points_acked
        )?;
        writeln!(
            formatter,
            "  deliveries:  {} of {} expected, {} missing, {} duplicates, {:.1}/s over {:.2} s",
            self.deliveries,
            self.deliveries_expected,
            self.missing,
            self.duplicates,
            self.deliveries_per_sec,
            self.elapsed_s
        )?;
        writeln!(
            formatter,
            "  leaks:       {} to the outsider {}, {} foreign, {} untracked",
            self.leaked, self.outsider_id, self.foreign, self.untracked
        )?;
        writeln!(formatter, "  publish→SSE: {}", self.publish_to_sse)?;
        writeln!(formatter, "  first→last grantee: {}", self.grantee_spread)?;
        writeln!(
            formatter,
            "  history:     {} grantees checked, {} missing, {} duplicates; outsider {} × 404, {} other",
            self.history_grantees,
            self.history_missing,
            self.history_duplicates,
            self.outsider_refused,
            self.outsider_not_refused
        )?;
        if let Some(peak) = self
            .timeline
            .samples
            .iter()
            .filter_map(|sample| sample.gateway_rss_kib)
            .max()
        {
            writeln!(
                formatter,
                "  gateway memory: peak {:.1} MiB",
                peak as f64 / 1024.0
            )?;
        }
        let verdict = if self.is_clean() {
            "clean"
        } else {
            "NOT clean"
        };
        writeln!(formatter, "  verdict:     {verdict}")?;
        for error in &self.errors {
            writeln!(formatter, "  error: {error}")?;
        }
        Ok(())
    }
}

/// The self-contained HTML page of a fan-out run.
pub fn fanout_page(report: &FanoutReport) -> String {
    let (clean, verdict) = if report.is_clean() {
        (
            true,
            "clean: every acknowledged point reached every grantee exactly once and nobody else",
        )
    } else {
        (false, "NOT clean: see the figures and errors below")
    };
    let mut page = Page::new(
        &format!("Fleetgate fanout run {}", report.run_id),
        clean,
        verdict,
    );
    page.section("Figures")
        .row("owner account", &report.account_id)
        .row("units (assets)", report.units)
        .row("grantees per asset", report.grantees)
        .row("points sent", report.points_sent)
        .row("points acknowledged", report.points_acked)
        .row("deliveries expected", report.deliveries_expected)
        .row("deliveries", report.deliveries)
        .row("missing", report.missing)
        .row("duplicates", report.duplicates)
        .row(
            format!("leaked to {} (granted nothing)", report.outsider_id).as_str(),
            report.leaked,
        )
        .row(
            "foreign / untracked",
            format!("{} / {}", report.foreign, report.untracked),
        )
        .row("elapsed", format!("{:.2} s", report.elapsed_s))
        .row(
            "deliveries (mean)",
            format!("{:.1} /s", report.deliveries_per_sec),
        );
    timeline_rows(&mut page, &report.timeline, "deliveries");
    page.section("History")
        .row("grantees whose history was read", report.history_grantees)
        .row("acknowledged points missing there", report.history_missing)
        .row("duplicate rows there", report.history_duplicates)
        .row("outsider requests answered 404", report.outsider_refused)
        .row("outsider requests not refused", report.outsider_not_refused);
    let latencies = [
        ("publish→SSE (every delivery)", &report.publish_to_sse),
        ("first→last grantee", &report.grantee_spread),
    ];
    page.section("Latency")
        .percentile_table(&latencies)
        .figure(
            &rate_chart(
                "Throughput: deliveries to grantees per second",
                "deliveries/s",
                &report.timeline,
            ),
            "Points arriving on the grantees' live streams, counted once a second.",
        )
        .figure(
            &percentile_chart("Latency percentiles", &latencies),
            "From the unit's send to each grantee's stream, and between the first and the last \
             grantee to receive the same point.",
        )
        .figure(&memory_chart(&report.timeline), MEMORY_CAPTION);
    if report.timeline.truncated {
        page.note("The series were cut at their sample limit; later seconds are not shown.");
    }
    page.finish(&report.errors)
}

/// Writes `fanout-<run_id>.json` and `fanout-<run_id>.html` into `dir`, creating it.
pub fn write_fanout_report(
    report: &FanoutReport,
    dir: &Path,
) -> Result<WrittenReport, ReportError> {
    write_report(dir, "fanout", &report.run_id, report, &fanout_page(report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::TimelineSample;

    fn report() -> FanoutReport {
        let latency = Percentiles {
            samples: 40,
            p50_us: 2_000,
            p90_us: 4_000,
            p99_us: 8_000,
            p999_us: 9_000,
            max_us: 9_500,
        };
        let samples = (0..3)
            .map(|second| TimelineSample {
                t_s: second as f64,
                acked_total: second * 20,
                acked_per_s: if second == 0 { 0.0 } else { 20.0 },
                gateway_rss_kib: Some(40_000 + second * 10),
            })
            .collect();
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
            timeline: Timeline {
                interval_s: 1.0,
                gateway_pid: Some(7),
                samples,
                truncated: false,
                memory_error: None,
            },
            errors: Vec::new(),
        }
    }

    #[test]
    fn any_problem_makes_the_run_not_clean() {
        assert!(report().is_clean());
        let spoiled: [fn(&mut FanoutReport); 10] = [
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
        for spoil in spoiled {
            let mut report = report();
            spoil(&mut report);
            assert!(!report.is_clean(), "{report}");
        }
    }

    #[test]
    fn page_is_self_contained_with_three_charts() {
        let mut report = report();
        report.errors.push("grantee <g> said \"no\"".into());
        let page = fanout_page(&report);
        let lower = page.to_ascii_lowercase();
        assert!(!lower.contains("http://") && !lower.contains("https://"));
        assert!(!lower.contains("<script") && !lower.contains("src="));
        assert_eq!(page.matches("<svg").count(), 3);
        assert_eq!(page.matches("<polyline").count(), 2, "rate and memory");
        assert!(page.contains("first→last grantee"));
        assert!(page.contains("grantee &lt;g&gt; said"));
        assert!(page.contains("NOT clean"));
        let text = report.to_string();
        assert!(text.contains("40 of 40 expected") && text.contains("NOT clean"));
    }
}
