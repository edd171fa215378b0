//! What a support-access run found, stated once in the report model (`crate::report`) for
//! people (text; a page with how long each rights change took to show from outside and each
//! kind of call's round trip) and scripts (JSON, `is_clean`), and the latency bookkeeping
//! behind it. Kept apart from the run so its rules can be tested without a gateway.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::report::html::{
    memory_chart, percentile_chart, rate_chart, timeline_figures, MEMORY_CAPTION,
};
use crate::report::svg::{BarGroup, PALETTE};
use crate::report::{Chart, Check, ScenarioReport, Section};
use crate::scenario::Timeline;
use crate::stats::{LatencyRecorder, Percentiles};

/// Flows each account goes through: request-approve-revoke, decline, support case.
pub const FLOWS_PER_ACCOUNT: usize = 3;

/// The kinds of API call a run times separately, because they do different amounts of work
/// on the gateway (a decision is a write transaction plus a scheduler wake-up, a list is a
/// read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    /// `POST /v1/support-access/requests`.
    Request,
    /// `GET /v1/accounts/{a}/support-access`.
    List,
    Approve,
    Decline,
    Revoke,
    /// `POST /v1/support-cases`.
    OpenCase,
    /// `POST /v1/support-cases/{id}/close`.
    CloseCase,
    /// Staff acting as the account's admin (`POST /v1/assets?account_id=`), allowed or not.
    Act,
    /// `GET /v1/audit`.
    Audit,
}

impl CallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Request => "request",
            CallKind::List => "list",
            CallKind::Approve => "approve",
            CallKind::Decline => "decline",
            CallKind::Revoke => "revoke",
            CallKind::OpenCase => "open_case",
            CallKind::CloseCase => "close_case",
            CallKind::Act => "act",
            CallKind::Audit => "audit",
        }
    }
}

impl fmt::Display for CallKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A change of a staff member's rights whose effect the run times: from the answer of the
/// call that made it to the answer of the first action that shows it. The contract makes
/// the change effective before the answer, so that first action is the very next one and
/// the figure is one action's round trip; a larger one means retries were needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cutover {
    /// Approval: the next action must succeed.
    Approved,
    /// Revocation: the next action must be refused.
    Revoked,
    /// A case opened: actions succeed at once. Not timed, because the run lists the active
    /// accesses in between, as the admin would.
    CaseOpened,
    /// A case closed: the next action must be refused.
    CaseClosed,
}

impl Cutover {
    /// Whether the staff member may act after this change.
    pub fn grants_access(self) -> bool {
        matches!(self, Cutover::Approved | Cutover::CaseOpened)
    }

    /// How messages name the change.
    pub fn describe(self) -> &'static str {
        match self {
            Cutover::Approved => "approval",
            Cutover::Revoked => "revocation",
            Cutover::CaseOpened => "opening the case",
            Cutover::CaseClosed => "closing the case",
        }
    }
}

/// Latencies of one account's flows (or of the whole run, once merged).
#[derive(Debug, Clone, Default)]
pub struct Timings {
    calls: BTreeMap<CallKind, LatencyRecorder>,
    approve_to_first_action: LatencyRecorder,
    revoke_to_first_refusal: LatencyRecorder,
    close_to_first_refusal: LatencyRecorder,
}

impl Timings {
    /// One answered call (any status); calls without an answer have no round trip.
    pub fn record_call(&mut self, kind: CallKind, elapsed: Duration) {
        self.calls
            .entry(kind)
            .or_default()
            .record_us(duration_us(elapsed));
    }

    pub fn record_cutover(&mut self, cutover: Cutover, elapsed: Duration) {
        let recorder = match cutover {
            Cutover::Approved => &mut self.approve_to_first_action,
            Cutover::Revoked => &mut self.revoke_to_first_refusal,
            Cutover::CaseClosed => &mut self.close_to_first_refusal,
            Cutover::CaseOpened => return,
        };
        recorder.record_us(duration_us(elapsed));
    }

    pub fn merge(&mut self, other: &Timings) {
        for (kind, recorder) in &other.calls {
            self.calls.entry(*kind).or_default().merge(recorder);
        }
        self.approve_to_first_action
            .merge(&other.approve_to_first_action);
        self.revoke_to_first_refusal
            .merge(&other.revoke_to_first_refusal);
        self.close_to_first_refusal
            .merge(&other.close_to_first_refusal);
    }

    pub fn latencies(&self) -> SupportLatencies {
        SupportLatencies {
            approve_to_first_action: self.approve_to_first_action.percentiles(),
            revoke_to_first_refusal: self.revoke_to_first_refusal.percentiles(),
            close_to_first_refusal: self.close_to_first_refusal.percentiles(),
            calls: self
                .calls
                .iter()
                .map(|(kind, recorder)| (*kind, recorder.percentiles()))
                .collect(),
        }
    }
}

fn duration_us(elapsed: Duration) -> i64 {
    i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX)
}

/// The run's latency figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SupportLatencies {
    /// From an approval's answer to the answer of the first action that succeeded.
    pub approve_to_first_action: Percentiles,
    /// From a revocation's answer to the answer of the first action that was refused.
    pub revoke_to_first_refusal: Percentiles,
    /// From a case closing's answer to the answer of the first action that was refused.
    pub close_to_first_refusal: Percentiles,
    /// Round trips per kind of call, refusals included.
    pub calls: BTreeMap<CallKind, Percentiles>,
}

/// The outcome of one support-access run.
#[derive(Debug, Clone, Serialize)]
pub struct SupportReport {
    pub run_id: String,
    /// Accounts the run created and took through every flow.
    pub accounts: usize,
    /// `FLOWS_PER_ACCOUNT × accounts` when every flow ran to its end.
    pub flows_expected: usize,
    /// Flows that ran to their end; a completed flow may still have failed checks.
    pub flows_completed: usize,
    /// Answers that arrived but broke the contract: wrong state or list, an action allowed
    /// that should be refused (or the other way round), a missing audit entry, a wrong
    /// status for an invalid transition.
    pub checks_failed: Vec<String>,
    pub latencies: SupportLatencies,
    /// API calls of the flows answered per second while they ran, and the gateway's memory
    /// when its pid was given.
    pub timeline: Timeline,
    /// Calls that failed so that a flow could not go on (transport errors, refusals of a
    /// step that must succeed).
    pub errors: Vec<String>,
}

impl ScenarioReport for SupportReport {
    const SCENARIO: &'static str = "support";

    fn run_id(&self) -> &str {
        &self.run_id
    }

    fn errors(&self) -> &[String] {
        &self.errors
    }

    fn checks(&self) -> Vec<Check> {
        vec![
            Check::holds(
                "every flow ran to its end",
                self.accounts > 0
                    && self.flows_completed == self.flows_expected
                    && self.flows_expected == FLOWS_PER_ACCOUNT * self.accounts,
                format!(
                    "{} of {} flows for {} accounts",
                    self.flows_completed, self.flows_expected, self.accounts
                ),
            ),
            Check::holds(
                "every rights change held when answered",
                self.checks_failed.is_empty(),
                if self.checks_failed.is_empty() {
                    "none failed".to_owned()
                } else {
                    self.checks_failed.join("; ")
                },
            ),
        ]
    }

    fn headline(&self) -> String {
        format!(
            "support run {}: {} accounts, {} of {} flows completed",
            self.run_id, self.accounts, self.flows_completed, self.flows_expected
        )
    }

    fn clean_means(&self) -> String {
        "every flow ran to its end and every rights change held when answered".into()
    }

    fn sections(&self) -> Vec<Section> {
        let answered: u64 = self
            .latencies
            .calls
            .values()
            .map(|percentiles| percentiles.samples)
            .sum();
        let figures = Section::new("Figures")
            .figure("accounts", self.accounts)
            .figure("flows expected", self.flows_expected)
            .figure("flows completed", self.flows_completed)
            .figure("checks failed", self.checks_failed.len())
            .figure("calls answered", answered);
        let latencies = &self.latencies;
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
        let rights = Section::new("Rights changes").latencies(&cutovers).chart(
            percentile_chart("Rights change → first action that shows it", &cutovers),
            "From the answer of the approval, revocation or case closing to the answer of the \
             first staff action that succeeded (approval) or was refused (the others). The \
             change must hold before its answer, so this is one action's round trip; more \
             means retries were needed.",
        );
        let calls = Section::new("Calls").latencies(&calls).chart(
            calls_chart(&calls),
            "Round trip of each kind of call, refusals included; calls that got no answer are \
             not timed.",
        );
        let over_time = Section::new("Over time")
            .chart(
                rate_chart(
                    "API calls answered per second",
                    "answered/s",
                    &self.timeline,
                ),
                "Calls of the flows that got an answer (any status), counted once a second \
                 while the flows run; account setup is not counted.",
            )
            .chart(memory_chart(&self.timeline), MEMORY_CAPTION);
        vec![
            timeline_figures(figures, &self.timeline, "calls"),
            rights,
            calls,
            over_time,
        ]
    }
}

impl fmt::Display for SupportReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&crate::report::text(self))
    }
}

/// Reads one percentile out of a call kind's figures.
type PercentileOf = fn(&Percentiles) -> u64;

/// p50, p99 and max per kind of call, one bar colour per percentile: with nine kinds, one
/// colour per kind would repeat the palette.
fn calls_chart(calls: &[(&str, &Percentiles)]) -> Chart {
    let title = "Round trip per kind of call";
    let timed: Vec<(&str, &Percentiles)> = calls
        .iter()
        .filter(|(_, percentiles)| percentiles.samples > 0)
        .copied()
        .collect();
    if timed.is_empty() {
        return Chart::missing(title, "no call was answered");
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
    Chart::bars(title, "milliseconds", &kinds, groups)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn report() -> SupportReport {
        let mut timings = Timings::default();
        timings.record_call(CallKind::Approve, Duration::from_micros(1_500));
        timings.record_cutover(Cutover::Approved, Duration::from_micros(2_000));
        SupportReport {
            run_id: "abc".into(),
            accounts: 2,
            flows_expected: 6,
            flows_completed: 6,
            checks_failed: Vec::new(),
            latencies: timings.latencies(),
            timeline: Timeline::default(),
            errors: Vec::new(),
        }
    }

    #[test]
    fn clean_report_and_its_failure_modes() {
        let spoilers: [fn(&mut SupportReport); 5] = [
            |report| report.flows_completed = 5,
            |report| report.checks_failed.push("x".into()),
            |report| report.errors.push("x".into()),
            |report| {
                report.accounts = 0;
                report.flows_expected = 0;
                report.flows_completed = 0;
            },
            // Figures that do not add up are not clean either.
            |report| {
                report.flows_expected = 3;
                report.flows_completed = 3;
            },
        ];
        crate::report::assert_each_spoils(report, &spoilers);
    }

    #[test]
    fn timings_merge_per_kind_and_skip_the_untimed_cutover() {
        let mut first = Timings::default();
        first.record_call(CallKind::Act, Duration::from_micros(100));
        first.record_cutover(Cutover::CaseOpened, Duration::from_micros(5));
        let mut second = Timings::default();
        second.record_call(CallKind::Act, Duration::from_micros(300));
        second.record_call(CallKind::List, Duration::from_micros(50));
        second.record_cutover(Cutover::Revoked, Duration::from_micros(700));
        second.record_cutover(Cutover::CaseClosed, Duration::from_micros(900));
        first.merge(&second);
        let latencies = first.latencies();
        assert_eq!(latencies.calls[&CallKind::Act].samples, 2);
        assert_eq!(latencies.calls[&CallKind::Act].max_us, 300);
        assert_eq!(latencies.calls[&CallKind::List].samples, 1);
        assert_eq!(latencies.approve_to_first_action.samples, 0);
        assert_eq!(latencies.revoke_to_first_refusal.max_us, 700);
        assert_eq!(latencies.close_to_first_refusal.max_us, 900);
    }

    #[test]
    fn cutovers_say_what_they_expect() {
        assert!(Cutover::Approved.grants_access());
        assert!(Cutover::CaseOpened.grants_access());
        assert!(!Cutover::Revoked.grants_access());
        assert!(!Cutover::CaseClosed.grants_access());
    }

    #[test]
    fn report_serializes_with_call_kinds_as_keys_and_displays() {
        let json = serde_json::to_value(report()).expect("json");
        assert_eq!(json["latencies"]["calls"]["approve"]["samples"], 1);
        assert_eq!(
            json["latencies"]["approve_to_first_action"]["max_us"],
            2_000
        );
        assert_eq!(json["flows_completed"], 6);
        let text = report().to_string();
        assert!(text.contains("6 of 6 flows completed"), "{text}");
        assert!(text.contains("approve: p50 1.5 ms"), "{text}");
        assert!(text.contains("checks failed: 0"), "{text}");
        assert!(text.ends_with("errors: none"), "{text}");
        let failing = SupportReport {
            checks_failed: vec!["account a1: access flow: not refused".into()],
            ..report()
        };
        assert!(failing.to_string().contains(
            "every rights change held when answered: FAILED (account a1: access flow: not refused)"
        ));
    }

    fn measured(gateway_pid: Option<u32>) -> SupportReport {
        let mut timings = Timings::default();
        for micros in [800, 1_200, 3_000] {
            timings.record_call(CallKind::Act, Duration::from_micros(micros));
            timings.record_call(CallKind::Revoke, Duration::from_micros(micros * 2));
            timings.record_cutover(Cutover::Revoked, Duration::from_micros(micros));
        }
        SupportReport {
            latencies: timings.latencies(),
            checks_failed: vec!["account <a1>: access flow: \"allowed\"".into()],
            errors: vec!["a <b>broken</b> call".into()],
            timeline: Timeline::steady(3, 30.0, gateway_pid),
            ..report()
        }
    }

    #[test]
    fn page_has_its_charts() {
        let page = crate::report::page(&measured(Some(9)));
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
}
