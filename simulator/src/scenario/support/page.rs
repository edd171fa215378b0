//! The HTML page of a support-access run, built with the shared `report::html::Page` frame
//! so it looks like every other scenario's report: the verdict, the flows, how long each
//! rights change took to show from outside (approve → first action, revoke and case close
//! → first refusal), each kind of call's round trip, the calls answered per second, the
//! gateway's memory, the failed checks and the errors.

use super::report::SupportReport;
use crate::report::html::{
    memory_chart, percentile_chart, rate_chart, timeline_rows, Page, MEMORY_CAPTION,
};
use crate::report::svg::{self, BarGroup, PALETTE};
use crate::stats::Percentiles;

/// The whole page for a support-access run.
pub fn support_page(report: &SupportReport) -> String {
    let (clean, verdict) = if report.is_clean() {
        (
            true,
            "clean: every flow ran to its end and every rights change held when answered",
        )
    } else {
        (false, "NOT clean: see the failed checks and errors below")
    };
    let mut page = Page::new(
        &format!("Fleetgate support run {}", report.run_id),
        clean,
        verdict,
    );
    page.section("Figures")
        .row("accounts", report.accounts)
        .row("flows expected", report.flows_expected)
        .row("flows completed", report.flows_completed)
        .row("checks failed", report.checks_failed.len())
        .row(
            "calls answered",
            report
                .latencies
                .calls
                .values()
                .map(|percentiles| percentiles.samples)
                .sum::<u64>(),
        );
    timeline_rows(&mut page, &report.timeline, "calls");
    let latencies = &report.latencies;
    let cutovers = [
        ("approve→first action", &latencies.approve_to_first_action),
        ("revoke→first refusal", &latencies.revoke_to_first_refusal),
        ("close→first refusal", &latencies.close_to_first_refusal),
    ];
    let calls: Vec<(&str, &Percentiles)> = latencies
        .calls
        .iter()
        .map(|(kind, percentiles)| (kind.as_str(), percentiles))
        .collect();
    page.section("Rights changes")
        .percentile_table(&cutovers)
        .figure(
            &percentile_chart("Rights change → first action that shows it", &cutovers),
            "From the answer of the approval, revocation or case closing to the answer of \
             the first staff action that succeeded (approval) or was refused (the others). \
             The change must hold before its answer, so this is one action's round trip; \
             more means retries were needed.",
        );
    page.section("Calls").percentile_table(&calls).figure(
        &calls_chart(&calls),
        "Round trip of each kind of call, refusals included; calls that got no answer \
             are not timed.",
    );
    page.section("Over time")
        .figure(
            &rate_chart(
                "API calls answered per second",
                "answered/s",
                &report.timeline,
            ),
            "Calls of the flows that got an answer (any status), counted once a second while \
             the flows run; account setup is not counted.",
        )
        .figure(&memory_chart(&report.timeline), MEMORY_CAPTION);
    if report.timeline.truncated {
        page.note("The series were cut at their sample limit; later seconds are not shown.");
    }
    if !report.checks_failed.is_empty() {
        page.section("Checks failed");
        for (index, check) in report.checks_failed.iter().enumerate() {
            page.row(&format!("{}", index + 1), check);
        }
    }
    page.finish(&report.errors)
}

/// Reads one percentile out of a call kind's figures.
type PercentileOf = fn(&Percentiles) -> u64;

/// p50, p99 and max per kind of call, one bar colour per percentile: with nine kinds, one
/// colour per kind would repeat the palette.
fn calls_chart(calls: &[(&str, &Percentiles)]) -> String {
    let title = "Round trip per kind of call";
    let timed: Vec<(&str, &Percentiles)> = calls
        .iter()
        .filter(|(_, percentiles)| percentiles.samples > 0)
        .copied()
        .collect();
    if timed.is_empty() {
        return svg::placeholder(title, "no call was answered");
    }
    let kinds: Vec<&str> = timed.iter().map(|(kind, _)| *kind).collect();
    let pick: [(&str, PercentileOf); 3] = [
        ("p50", |percentiles| percentiles.p50_us),
        ("p99", |percentiles| percentiles.p99_us),
        ("max", |percentiles| percentiles.max_us),
    ];
    let groups: Vec<BarGroup> = pick
        .iter()
        .enumerate()
        .map(|(index, (name, value_of))| BarGroup {
            name: (*name).to_owned(),
            color: PALETTE[index % PALETTE.len()],
            values: timed
                .iter()
                .map(|(_, percentiles)| value_of(percentiles) as f64 / 1_000.0)
                .collect(),
        })
        .collect();
    svg::bar_chart(title, "milliseconds", &kinds, &groups, &svg::short_number)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::report::tests::report;
    use super::super::report::{CallKind, Cutover, Timings};
    use super::*;
    use crate::scenario::{Timeline, TimelineSample};

    fn measured(gateway_pid: Option<u32>) -> SupportReport {
        let mut timings = Timings::default();
        for micros in [800, 1_200, 3_000] {
            timings.record_call(CallKind::Act, Duration::from_micros(micros));
            timings.record_call(CallKind::Revoke, Duration::from_micros(micros * 2));
            timings.record_cutover(Cutover::Revoked, Duration::from_micros(micros));
        }
        let samples = (0..3)
            .map(|second| TimelineSample {
                t_s: second as f64,
                acked_total: second * 30,
                acked_per_s: if second == 0 { 0.0 } else { 30.0 },
                gateway_rss_kib: gateway_pid.map(|_| 30_000 + second),
            })
            .collect();
        SupportReport {
            latencies: timings.latencies(),
            checks_failed: vec!["account <a1>: access flow: \"allowed\"".into()],
            errors: vec!["a <b>broken</b> call".into()],
            timeline: Timeline {
                interval_s: 1.0,
                gateway_pid,
                samples,
                truncated: false,
                memory_error: None,
            },
            ..report()
        }
    }

    #[test]
    fn page_is_self_contained_and_escapes_what_it_quotes() {
        for page in [
            support_page(&measured(None)),
            support_page(&measured(Some(9))),
        ] {
            let lower = page.to_ascii_lowercase();
            assert!(!lower.contains("http://") && !lower.contains("https://"));
            assert!(!lower.contains("<script") && !lower.contains("src="));
            assert!(!lower.contains("url("));
            assert!(page.contains("a &lt;b&gt;broken&lt;/b&gt; call"));
            assert!(page.contains("account &lt;a1&gt;: access flow: &quot;allowed&quot;"));
            assert!(!page.contains("<b>broken"));
        }
    }

    #[test]
    fn page_has_its_charts() {
        let page = support_page(&measured(Some(9)));
        assert!(page.contains("Fleetgate support run abc"));
        assert!(page.contains("NOT clean"));
        assert_eq!(
            page.matches("<svg").count(),
            4,
            "rights changes, calls, rate, memory"
        );
        assert_eq!(page.matches("<polyline").count(), 2, "rate and memory");
        assert!(page.contains("revoke→first refusal") && !page.contains("close_case"));
        assert!(page.contains(">act<") && page.contains(">revoke<"));
        assert!(page.contains("VmRSS of pid 9"));
        assert!(page.contains("calls answered"));
    }

    #[test]
    fn memory_without_a_pid_is_not_measured() {
        let page = support_page(&measured(None));
        assert!(page.contains("not measured (no --gateway-pid given)"));
        assert_eq!(page.matches("<polyline").count(), 1, "rate only");
        let clean = support_page(&report());
        assert!(clean.contains("clean: every flow ran"));
        assert!(clean.contains("not enough samples"));
    }
}
