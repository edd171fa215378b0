//! What a key run found, stated once in the report model (`crate::report`) for people
//! (text; a page with propagation over the run and per change in the order the changes
//! were made: one slow change shows there, not in the run's percentiles) and scripts
//! (JSON, `is_clean`). Kept apart from the run so its rules can be tested without a
//! gateway.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::api::{AccountId, DeviceId, KeyId};
use crate::report::html::{
    memory_chart, percentile_chart, rate_chart, timeline_figures, MEMORY_CAPTION,
};
use crate::report::svg::{Series, PALETTE};
use crate::report::{Chart, Check, Outcome, ScenarioReport, Section};
use crate::scenario::Timeline;
use crate::stats::{format_us, LatencyRecorder, Percentiles};
use crate::unit::HolderStats;

/// One key change the run made (create, edit, delete, bulk) and how it reached the units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChangeRecord {
    /// What the change was, e.g. `create fleet-wide keypad_pin`.
    pub change: String,
    pub key_ids: Vec<KeyId>,
    /// The call's error, when it failed; the other fields are then mostly empty.
    pub error: Option<String>,
    /// Round trip of the HTTP call, when it answered.
    pub call_us: Option<u64>,
    /// Units whose asset the change concerns, online or not.
    pub units_affected: usize,
    /// As the answer's `distribution` lists them.
    pub delivered: usize,
    pub pending: usize,
    /// Online affected units that took the change within the propagation timeout.
    pub held: usize,
    /// ... of which before the answer arrived (the contract's normal case).
    pub held_before_answer: usize,
    /// Online affected units that never took it within the timeout.
    pub never_held: usize,
    /// Request start → unit took the set, over the units that took it.
    pub from_request: Percentiles,
    /// Answer → unit took the set, over the units that took it only after the answer.
    pub after_answer: Percentiles,
    /// Disagreements between `distribution` and what the units saw (see `propagation.rs`).
    pub distribution_mismatches: u64,
}

impl ChangeRecord {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// The unit that was offline while keys were created, and what happened when it came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconnectRecord {
    pub device_id: DeviceId,
    /// Whether every key created while it was offline listed it as pending.
    pub listed_pending: bool,
    /// Connect start → the retained set with the new keys taken; `None` if it never was.
    pub held_after_us: Option<u64>,
}

/// Attempts and what happened to their events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccessTally {
    pub attempts: u64,
    /// Unit decisions by outcome: `granted`, `denied:<reason>`.
    pub outcomes: BTreeMap<String, u64>,
    /// Unreported decisions at the edges of each key's window (`access.rs`).
    pub window_probes: u64,
    /// Decisions (attempts and probes) that differ from what the API's keys imply.
    pub decision_mismatches: u64,
    /// Reports the broker acknowledged.
    pub events_reported: u64,
    /// ... found, field for field, in `GET /v1/assets/{x}/access-events`.
    pub events_stored: u64,
    /// ... seen on the owner's live stream as `event: access`.
    pub events_live: u64,
}

/// The outcome of one key run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeysReport {
    pub run_id: String,
    /// The account the run created; its assets are `sim-{run_id}-a{index}`.
    pub account_id: Option<AccountId>,
    /// Units that connected with a key holder.
    pub units: usize,
    pub keys_created: usize,
    pub changes: Vec<ChangeRecord>,
    /// Over every change and unit: request start → unit took the set.
    pub propagation_from_request: Percentiles,
    /// Over every change and unit that took it only after the answer.
    pub propagation_after_answer: Percentiles,
    pub held_before_answer: u64,
    pub never_held: u64,
    pub distribution_mismatches: u64,
    pub reconnect: Option<ReconnectRecord>,
    /// A short-lived key's `valid_to` → the unit took a set without it.
    pub expiry_lag: Percentiles,
    /// Units whose held set differs from the keys the API shows for their asset.
    pub set_mismatches: u64,
    /// Units whose status did not report the held version as pushed and acked.
    pub status_mismatches: u64,
    pub access: AccessTally,
    /// The units' key holders, summed.
    pub holders: HolderStats,
    /// Key-set changes the run saw the units take, per second from the first change to the
    /// last check, and the gateway's memory when its pid was given.
    pub timeline: Timeline,
    /// Contract violations found, with examples (capped).
    pub checks_failed: Vec<String>,
    /// Problems that kept parts of the run from being checked (capped).
    pub errors: Vec<String>,
}

impl KeysReport {
    /// The figures over the whole run, and the reconnected unit's.
    fn figures(&self) -> Section {
        let account = self
            .account_id
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        let outcomes: Vec<String> = self
            .access
            .outcomes
            .iter()
            .map(|(outcome, count)| format!("{outcome} {count}"))
            .collect();
        let section = Section::new("Figures")
            .figure("account", account)
            .figure("units", self.units)
            .figure("keys created", self.keys_created)
            .figure("changes", self.changes.len())
            .figure(
                "unit-changes held before the answer",
                self.held_before_answer,
            )
            .figure("unit-changes never held", self.never_held)
            .figure("distribution mismatches", self.distribution_mismatches)
            .figure("held set mismatches", self.set_mismatches)
            .figure("device status mismatches", self.status_mismatches)
            .figure("access attempts", self.access.attempts)
            .figure("access outcomes", outcomes.join(", "))
            .figure("window-edge probes", self.access.window_probes)
            .figure("decision mismatches", self.access.decision_mismatches)
            .figure(
                "events reported / stored / live",
                format!(
                    "{} / {} / {}",
                    self.access.events_reported, self.access.events_stored, self.access.events_live
                ),
            )
            .figure("key sets taken by units", self.holders.sets_taken)
            .figure("key-set acks sent", self.holders.acks_sent)
            .figure("key-set ack failures", self.holders.ack_failures)
            .figure("unreadable key sets", self.holders.sets_malformed);
        let section = match &self.reconnect {
            Some(reconnect) => section.figure(
                &format!("unit {} after reconnecting", reconnect.device_id),
                format!(
                    "listed pending: {}; took the retained set after {}",
                    reconnect.listed_pending,
                    reconnect
                        .held_after_us
                        .map_or_else(|| "never".to_owned(), format_us)
                ),
            ),
            None => section,
        };
        timeline_figures(section, &self.timeline, "unit changes")
    }

    /// One row per change, in the order they were made.
    fn changes_section(&self) -> Section {
        self.changes
            .iter()
            .fold(Section::new("Changes"), |section, change| {
                let outcome = match &change.error {
                    Some(error) => format!("failed: {error}"),
                    None => format!(
                        "call {}, {}/{} delivered, {} pending, held by {} ({} before the \
                         answer), from request {}",
                        change.call_us.map_or_else(|| "-".to_owned(), format_us),
                        change.delivered,
                        change.units_affected,
                        change.pending,
                        change.held,
                        change.held_before_answer,
                        change.from_request
                    ),
                };
                section.figure(&change.change, outcome)
            })
    }
}

impl ScenarioReport for KeysReport {
    const SCENARIO: &'static str = "keys";

    fn run_id(&self) -> &str {
        &self.run_id
    }

    fn errors(&self) -> &[String] {
        &self.errors
    }

    fn checks(&self) -> Vec<Check> {
        let failed_changes = self.changes.iter().filter(|c| !c.succeeded()).count();
        let access = &self.access;
        let reconnect = match &self.reconnect {
            None => Check::new(
                "the reconnected unit took its retained set",
                Outcome::NotJudged,
                "no unit was offline",
            ),
            Some(reconnect) => Check::holds(
                "the reconnected unit took its retained set",
                reconnect.listed_pending && reconnect.held_after_us.is_some(),
                format!(
                    "listed pending: {}, took it: {}",
                    reconnect.listed_pending,
                    reconnect.held_after_us.is_some()
                ),
            ),
        };
        vec![
            Check::holds(
                "every change answered",
                !self.changes.is_empty() && failed_changes == 0,
                format!("{failed_changes} of {} failed", self.changes.len()),
            ),
            Check::holds(
                "every unit held every change",
                self.never_held == 0,
                format!("{} unit-changes never held", self.never_held),
            ),
            Check::holds(
                "units hold what the API shows",
                self.distribution_mismatches == 0
                    && self.set_mismatches == 0
                    && self.status_mismatches == 0,
                format!(
                    "mismatches: distribution {}, held sets {}, device status {}",
                    self.distribution_mismatches, self.set_mismatches, self.status_mismatches
                ),
            ),
            Check::holds(
                "decisions agree with the API",
                access.attempts > 0 && access.decision_mismatches == 0,
                format!(
                    "{} attempts, {} differ",
                    access.attempts, access.decision_mismatches
                ),
            ),
            Check::holds(
                "every access event reported, stored and live",
                access.events_reported == access.attempts
                    && access.events_stored == access.events_reported
                    && access.events_live == access.events_reported,
                format!(
                    "{} attempts: {} reported, {} stored, {} live",
                    access.attempts,
                    access.events_reported,
                    access.events_stored,
                    access.events_live
                ),
            ),
            reconnect,
            Check::holds(
                "the run's own checks",
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
        let account = self
            .account_id
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        format!(
            "keys run {} (account {account}): {} units, {} keys created, {} changes",
            self.run_id,
            self.units,
            self.keys_created,
            self.changes.len()
        )
    }

    fn clean_means(&self) -> String {
        "every change reached the units as answered, and their decisions and events agree \
         with the key API"
            .into()
    }

    fn sections(&self) -> Vec<Section> {
        let calls = call_round_trips(self);
        let latencies = [
            ("propagation from request", &self.propagation_from_request),
            ("propagation after answer", &self.propagation_after_answer),
            ("expiry lag", &self.expiry_lag),
            ("change call round trip", &calls),
        ];
        let latency = Section::new("Latency")
            .latencies(&latencies)
            .chart(
                percentile_chart("Latency percentiles", &latencies),
                "Request start → the unit took the key set showing the change; answer → \
                 taken, for units that took it only after the answer (the contract expects \
                 none); a short-lived key's valid_to → the unit took a set without it; the \
                 key call's round trip.",
            )
            .chart(
                propagation_chart(self),
                "Per change, in the order they were made: request start → the slowest and \
                 the median unit holding it, and the call's round trip.",
            );
        let over_time = Section::new("Over time")
            .chart(
                rate_chart(
                    "Unit key-set changes per second",
                    "unit changes/s",
                    &self.timeline,
                ),
                "Each time the run saw a unit take a key set showing a change it waited for \
                 (created, edited, deleted, the retained set after reconnecting, the \
                 short-lived key gone), counted when seen: right after the answer for units \
                 that took it before.",
            )
            .chart(memory_chart(&self.timeline), MEMORY_CAPTION);
        vec![self.figures(), latency, self.changes_section(), over_time]
    }
}

impl fmt::Display for KeysReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&crate::report::text(self))
    }
}

/// The answered changes' call round trips as percentiles.
fn call_round_trips(report: &KeysReport) -> Percentiles {
    let mut recorder = LatencyRecorder::new();
    for micros in report.changes.iter().filter_map(|change| change.call_us) {
        recorder.record_us(i64::try_from(micros).unwrap_or(i64::MAX));
    }
    recorder.percentiles()
}

/// Milliseconds per change (x: the change's number in the run's order).
fn propagation_chart(report: &KeysReport) -> Chart {
    let title = "Propagation per change, in change order";
    let mut slowest = Vec::new();
    let mut median = Vec::new();
    let mut call = Vec::new();
    for (index, change) in report.changes.iter().enumerate() {
        let x = (index + 1) as f64;
        if change.from_request.samples > 0 {
            slowest.push((x, change.from_request.max_us as f64 / 1_000.0));
            median.push((x, change.from_request.p50_us as f64 / 1_000.0));
        }
        if let Some(micros) = change.call_us {
            call.push((x, micros as f64 / 1_000.0));
        }
    }
    if slowest.is_empty() && call.is_empty() {
        return Chart::missing(title, "no change was answered");
    }
    let series = Series::drawn([
        ("slowest unit (from request)", PALETTE[1], slowest),
        ("median unit (from request)", PALETTE[0], median),
        ("call round trip", PALETTE[3], call),
    ]);
    Chart::lines(title, "change number", "milliseconds", series)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn change() -> ChangeRecord {
        ChangeRecord {
            change: "create fleet-wide keypad_pin".into(),
            key_ids: vec![KeyId::new("k1")],
            call_us: Some(2_500),
            units_affected: 2,
            delivered: 2,
            held: 2,
            held_before_answer: 2,
            ..ChangeRecord::default()
        }
    }

    pub(crate) fn report() -> KeysReport {
        KeysReport {
            run_id: "abc".into(),
            account_id: Some(AccountId::new("acc1")),
            units: 2,
            keys_created: 1,
            changes: vec![change()],
            access: AccessTally {
                attempts: 4,
                outcomes: BTreeMap::from([("granted".into(), 2), ("denied:expired".into(), 2)]),
                events_reported: 4,
                events_stored: 4,
                events_live: 4,
                ..AccessTally::default()
            },
            ..KeysReport::default()
        }
    }

    #[test]
    fn clean_report_and_its_failure_modes() {
        assert!(report().is_clean());
        let unclean = |edit: fn(&mut KeysReport)| {
            let mut report = report();
            edit(&mut report);
            assert!(!report.is_clean(), "{report}");
        };
        unclean(|report| report.errors.push("x".into()));
        unclean(|report| report.checks_failed.push("x".into()));
        unclean(|report| report.changes.clear());
        unclean(|report| report.changes[0].error = Some("HTTP 500".into()));
        unclean(|report| report.never_held = 1);
        unclean(|report| report.distribution_mismatches = 1);
        unclean(|report| report.set_mismatches = 1);
        unclean(|report| report.status_mismatches = 1);
        unclean(|report| report.access.attempts = 0);
        unclean(|report| report.access.decision_mismatches = 1);
        unclean(|report| report.access.events_stored = 3);
        unclean(|report| report.access.events_live = 3);
        unclean(|report| report.access.events_reported = 3);
        unclean(|report| {
            report.reconnect = Some(ReconnectRecord {
                device_id: DeviceId::new("d1"),
                listed_pending: true,
                held_after_us: None,
            })
        });
        unclean(|report| {
            report.reconnect = Some(ReconnectRecord {
                device_id: DeviceId::new("d1"),
                listed_pending: false,
                held_after_us: Some(5),
            })
        });
    }

    #[test]
    fn report_serializes_and_displays() {
        let json = serde_json::to_value(report()).expect("json");
        assert_eq!(json["changes"][0]["held_before_answer"], 2);
        assert_eq!(json["access"]["outcomes"]["denied:expired"], 2);
        let mut failing = report();
        failing.changes.push(ChangeRecord {
            change: "delete tag".into(),
            error: Some("HTTP 404: no key".into()),
            ..ChangeRecord::default()
        });
        failing.reconnect = Some(ReconnectRecord {
            device_id: DeviceId::new("d9"),
            listed_pending: true,
            held_after_us: Some(1_500),
        });
        let text = failing.to_string();
        assert!(text.contains("2/2 delivered"), "{text}");
        assert!(text.contains("delete tag: failed: HTTP 404"), "{text}");
        assert!(
            text.contains("unit d9 after reconnecting: listed pending: true"),
            "{text}"
        );
        assert!(text.contains("granted 2"), "{text}");
        assert!(text.contains("errors: none"), "{text}");
    }

    fn measured(gateway_pid: Option<u32>) -> KeysReport {
        let percentiles = Percentiles {
            samples: 2,
            p50_us: 3_000,
            p90_us: 5_000,
            p99_us: 5_000,
            p999_us: 5_000,
            max_us: 5_000,
        };
        let propagated = ChangeRecord {
            from_request: percentiles,
            ..change()
        };
        let failed = ChangeRecord {
            error: Some("HTTP 500 <internal>".into()),
            call_us: None,
            ..change()
        };
        KeysReport {
            changes: vec![propagated.clone(), failed, propagated],
            propagation_from_request: percentiles,
            expiry_lag: percentiles,
            checks_failed: vec!["unit <u1> held \"k9\"".into()],
            errors: vec!["a <b>broken</b> call".into()],
            timeline: Timeline::steady(3, 4.0, gateway_pid),
            ..report()
        }
    }

    #[test]
    fn page_has_its_charts() {
        let page = crate::report::page(&measured(Some(5)));
        assert!(page.contains("Fleetgate keys run abc"));
        assert!(page.contains("NOT clean"));
        assert_eq!(
            page.matches("<svg").count(),
            4,
            "percentiles, per change, rate, memory"
        );
        assert_eq!(
            page.matches("<polyline").count(),
            5,
            "slowest, median, call, rate, memory"
        );
        assert!(page.contains("slowest unit (from request)"));
        assert!(page.contains("expiry lag") && page.contains("change call round trip"));
        assert!(page.contains("VmRSS of pid 5"));
    }

    #[test]
    fn call_round_trips_skip_failed_calls() {
        let percentiles = call_round_trips(&measured(None));
        assert_eq!(percentiles.samples, 2);
        assert!(percentiles.max_us >= 2_500);
    }
}
