//! What a support-access run found, in a form both people (`Display`) and scripts
//! (`Serialize`, `is_clean`) can judge, and the latency bookkeeping behind it. Kept apart
//! from the run so its rules can be tested without a gateway.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

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

impl SupportReport {
    /// Every flow of every account ran to its end, every check held and nothing failed. A
    /// run without accounts proves nothing, so it is not clean either.
    pub fn is_clean(&self) -> bool {
        self.accounts > 0
            && self.flows_completed == self.flows_expected
            && self.flows_expected == FLOWS_PER_ACCOUNT * self.accounts
            && self.checks_failed.is_empty()
            && self.errors.is_empty()
    }
}

impl fmt::Display for SupportReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            formatter,
            "support run {}: {} accounts, {} of {} flows completed",
            self.run_id, self.accounts, self.flows_completed, self.flows_expected
        )?;
        let latencies = &self.latencies;
        writeln!(
            formatter,
            "  approve → first action:   {}",
            latencies.approve_to_first_action
        )?;
        writeln!(
            formatter,
            "  revoke → first refusal:   {}",
            latencies.revoke_to_first_refusal
        )?;
        writeln!(
            formatter,
            "  close → first refusal:    {}",
            latencies.close_to_first_refusal
        )?;
        writeln!(formatter, "  calls:")?;
        for (kind, percentiles) in &latencies.calls {
            writeln!(formatter, "    {:<11} {percentiles}", kind.as_str())?;
        }
        list(formatter, "checks failed", &self.checks_failed)?;
        writeln!(formatter)?;
        list(formatter, "errors", &self.errors)
    }
}

fn list(formatter: &mut fmt::Formatter<'_>, title: &str, entries: &[String]) -> fmt::Result {
    if entries.is_empty() {
        return write!(formatter, "  {title}: none");
    }
    write!(formatter, "  {title} ({}):", entries.len())?;
    for entry in entries {
        write!(formatter, "\n    - {entry}")?;
    }
    Ok(())
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
        assert!(report().is_clean());
        assert!(!SupportReport {
            flows_completed: 5,
            ..report()
        }
        .is_clean());
        assert!(!SupportReport {
            checks_failed: vec!["x".into()],
            ..report()
        }
        .is_clean());
        assert!(!SupportReport {
            errors: vec!["x".into()],
            ..report()
        }
        .is_clean());
        assert!(!SupportReport {
            accounts: 0,
            flows_expected: 0,
            flows_completed: 0,
            ..report()
        }
        .is_clean());
        // Figures that do not add up are not clean either.
        assert!(!SupportReport {
            flows_expected: 3,
            flows_completed: 3,
            ..report()
        }
        .is_clean());
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
        assert!(text.contains("approve     p50 1.5 ms"), "{text}");
        assert!(text.contains("checks failed: none"), "{text}");
        assert!(text.ends_with("errors: none"), "{text}");
        let failing = SupportReport {
            checks_failed: vec!["account a1: access flow: not refused".into()],
            ..report()
        };
        assert!(failing
            .to_string()
            .contains("checks failed (1):\n    - account a1: access flow: not refused"));
    }
}
