//! What a revoke-storm run found, for people (`Display`, the HTML page) and scripts
//! (`Serialize`, `is_clean`), kept apart from the run so its verdict and page can be tested
//! without a gateway.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::storm::{RemovalCall, RevokeMode};
use crate::api::AccountId;
use crate::report::html::{
    memory_chart, percentile_chart, rate_chart, timeline_rows, Page, MEMORY_CAPTION,
};
use crate::report::{write_report, ReportError, WrittenReport};
use crate::scenario::visibility::Violation;
use crate::scenario::Timeline;
use crate::stats::{format_us, Percentiles};

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

impl RevokeStormReport {
    /// Every grant was taken back as answered, no point crossed a cut-off, the grantees are
    /// locked out of history, the owner still has everything, and nothing went wrong.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
            && self.grants_expected > 0
            && self.grants_live_at_start == self.grants_expected
            && self.grants_removed == self.grants_expected
            && self.grants_live_after == 0
            && self.calls.iter().all(|call| call.succeeded)
            && self.violations == 0
            && self.history_refused == self.grants_expected
            && self.history_not_refused == 0
            && self.owner_missing == 0
            && self.owner_duplicates == 0
            && self.points_acked > 0
    }
}

impl fmt::Display for RevokeStormReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            formatter,
            "revoke-storm run {} (owner {}, seed {}): {} units × {} grantees = {} grants, {} live at start",
            self.run_id,
            self.account_id,
            self.seed,
            self.units,
            self.grantees,
            self.grants_expected,
            self.grants_live_at_start
        )?;
        writeln!(
            formatter,
            "  storm:      {}, {} in flight: {} calls, {} grants removed in {:.2} s ({:.1}/s), {} still live",
            self.mode,
            self.concurrency,
            self.calls.len(),
            self.grants_removed,
            self.storm_s,
            self.removals_per_sec,
            self.grants_live_after
        )?;
        writeln!(formatter, "  latency:    {}", self.removal_latency)?;
        writeln!(
            formatter,
            "  points:     {} sent, {} acknowledged, {} delivered to grantees",
            self.points_sent, self.points_acked, self.points_delivered
        )?;
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
        writeln!(
            formatter,
            "  history:    grantees {} × 404, {} other; owner {} missing, {} duplicates",
            self.history_refused,
            self.history_not_refused,
            self.owner_missing,
            self.owner_duplicates
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
        writeln!(formatter, "  verdict:    {verdict}")?;
        for error in &self.errors {
            writeln!(formatter, "  error: {error}")?;
        }
        Ok(())
    }
}

/// The self-contained HTML page of a revoke-storm run.
pub fn revoke_storm_page(report: &RevokeStormReport) -> String {
    let (clean, verdict) = if report.is_clean() {
        (
            true,
            "clean: every grant removed as answered, no point crossed a cut-off, grantees locked \
             out, the owner keeps everything",
        )
    } else {
        (false, "NOT clean: see the figures and errors below")
    };
    let mut page = Page::new(
        &format!("Fleetgate revoke-storm run {}", report.run_id),
        clean,
        verdict,
    );
    page.section("Figures")
        .row("owner account", &report.account_id)
        .row("seed", report.seed)
        .row(
            "units × grantees",
            format!("{} × {}", report.units, report.grantees),
        )
        .row("grants live at start", report.grants_live_at_start)
        .row("removal mode", report.mode)
        .row("calls in flight", report.concurrency)
        .row("calls", report.calls.len())
        .row("grants removed", report.grants_removed)
        .row("grants still live after", report.grants_live_after)
        .row("storm duration", format!("{:.2} s", report.storm_s))
        .row(
            "removals (mean)",
            format!("{:.1} grants/s", report.removals_per_sec),
        )
        .row(
            "points sent / acknowledged",
            format!("{} / {}", report.points_sent, report.points_acked),
        )
        .row("points delivered to grantees", report.points_delivered)
        .row("points past a cut-off", report.violations);
    timeline_rows(&mut page, &report.timeline, "grants removed");
    page.section("History after the storm")
        .row("grantee requests answered 404", report.history_refused)
        .row("grantee requests not refused", report.history_not_refused)
        .row("owner: acknowledged points missing", report.owner_missing)
        .row("owner: duplicate rows", report.owner_duplicates);
    let latencies = [("removal call round trip", &report.removal_latency)];
    page.section("Latency")
        .percentile_table(&latencies)
        .figure(
            &rate_chart(
                "Throughput: grants removed per second",
                "removed/s",
                &report.timeline,
            ),
            "Grants whose removal call had been answered, counted once a second from the \
             first scheduled send; the storm is the spike.",
        )
        .figure(
            &percentile_chart("Removal latency percentiles", &latencies),
            "From sending a removal call to its answer, with the others in flight beside it.",
        )
        .figure(&memory_chart(&report.timeline), MEMORY_CAPTION);
    if report.timeline.truncated {
        page.note("The series were cut at their sample limit; later seconds are not shown.");
    }
    page.finish(&report.errors)
}

/// Writes `revoke-storm-<run_id>.json` and `.html` into `dir`, creating it.
pub fn write_revoke_storm_report(
    report: &RevokeStormReport,
    dir: &Path,
) -> Result<WrittenReport, ReportError> {
    write_report(
        dir,
        "revoke-storm",
        &report.run_id,
        report,
        &revoke_storm_page(report),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::TimelineSample;

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
            timeline: Timeline {
                interval_s: 1.0,
                gateway_pid: None,
                samples: (0..3)
                    .map(|second| TimelineSample {
                        t_s: second as f64,
                        acked_total: second * 2,
                        acked_per_s: 2.0,
                        gateway_rss_kib: None,
                    })
                    .collect(),
                truncated: false,
                memory_error: None,
            },
            errors: Vec::new(),
        }
    }

    #[test]
    fn any_problem_makes_the_run_not_clean() {
        assert!(report().is_clean());
        let spoiled: [fn(&mut RevokeStormReport); 10] = [
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
        for spoil in spoiled {
            let mut report = report();
            spoil(&mut report);
            assert!(!report.is_clean(), "{report}");
        }
    }

    #[test]
    fn page_is_self_contained_with_three_charts() {
        let page = revoke_storm_page(&report());
        let lower = page.to_ascii_lowercase();
        assert!(!lower.contains("http://") && !lower.contains("https://"));
        assert!(!lower.contains("<script") && !lower.contains("src="));
        assert_eq!(page.matches("<svg").count(), 3);
        assert!(page.contains("not measured (no --gateway-pid given)"));
        assert!(page.contains("one bulk remove per grantee"));
        let json = serde_json::to_value(report()).expect("json");
        assert_eq!(json["mode"], "bulk");
        assert!(report().to_string().contains("verdict:    clean"));
    }
}
