//! What a key run found, in a form both people (`Display`) and scripts (`Serialize`,
//! `is_clean`) can judge. Kept apart from the run so its rules can be tested without a
//! gateway.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::api::{AccountId, DeviceId, KeyId};
use crate::scenario::Timeline;
use crate::stats::{format_us, Percentiles};
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
    /// Every change succeeded and reached every online unit, the distribution lists, held
    /// sets, statuses and decisions agree with the API, and every reported attempt was
    /// stored and streamed. A run that tried no access proves nothing, so it is not clean.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
            && self.checks_failed.is_empty()
            && !self.changes.is_empty()
            && self.changes.iter().all(ChangeRecord::succeeded)
            && self.never_held == 0
            && self.distribution_mismatches == 0
            && self.set_mismatches == 0
            && self.status_mismatches == 0
            && self.access.attempts > 0
            && self.access.decision_mismatches == 0
            && self.access.events_reported == self.access.attempts
            && self.access.events_stored == self.access.events_reported
            && self.access.events_live == self.access.events_reported
            && self.reconnect.as_ref().is_none_or(|reconnect| {
                reconnect.listed_pending && reconnect.held_after_us.is_some()
            })
    }
}

impl fmt::Display for KeysReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let account = self
            .account_id
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        writeln!(
            formatter,
            "keys run {} (account {account}): {} units, {} keys created, {} changes",
            self.run_id,
            self.units,
            self.keys_created,
            self.changes.len()
        )?;
        writeln!(
            formatter,
            "  propagation from request: {}",
            self.propagation_from_request
        )?;
        writeln!(
            formatter,
            "  after the answer:         {} ({} unit-changes held before the answer, {} never)",
            self.propagation_after_answer, self.held_before_answer, self.never_held
        )?;
        for change in &self.changes {
            match &change.error {
                Some(error) => writeln!(formatter, "    - {}: failed: {error}", change.change)?,
                None => writeln!(
                    formatter,
                    "    - {}: call {}, {}/{} delivered, {} pending, held by {} ({} before \
                     the answer); from request {}",
                    change.change,
                    change.call_us.map_or_else(|| "-".to_owned(), format_us),
                    change.delivered,
                    change.units_affected,
                    change.pending,
                    change.held,
                    change.held_before_answer,
                    change.from_request
                )?,
            }
        }
        if let Some(reconnect) = &self.reconnect {
            writeln!(
                formatter,
                "  reconnect:  {} listed pending: {}; took the retained set after {}",
                reconnect.device_id,
                reconnect.listed_pending,
                reconnect
                    .held_after_us
                    .map_or_else(|| "never".to_owned(), format_us)
            )?;
        }
        writeln!(formatter, "  expiry lag: {}", self.expiry_lag)?;
        let outcomes: Vec<String> = self
            .access
            .outcomes
            .iter()
            .map(|(outcome, count)| format!("{outcome} {count}"))
            .collect();
        writeln!(
            formatter,
            "  access:     {} attempts ({}), {} window-edge probes; {} decisions differ from \
             the API",
            self.access.attempts,
            outcomes.join(", "),
            self.access.window_probes,
            self.access.decision_mismatches
        )?;
        writeln!(
            formatter,
            "  events:     {} reported, {} stored, {} live",
            self.access.events_reported, self.access.events_stored, self.access.events_live
        )?;
        writeln!(
            formatter,
            "  mismatches: distribution {}, held sets {}, device status {}",
            self.distribution_mismatches, self.set_mismatches, self.status_mismatches
        )?;
        writeln!(
            formatter,
            "  units:      {} sets taken, {} acks, {} ack failures, {} unreadable sets",
            self.holders.sets_taken,
            self.holders.acks_sent,
            self.holders.ack_failures,
            self.holders.sets_malformed
        )?;
        write_list(formatter, "checks failed", &self.checks_failed)?;
        writeln!(formatter)?;
        write_list(formatter, "errors", &self.errors)
    }
}

fn write_list(formatter: &mut fmt::Formatter<'_>, what: &str, items: &[String]) -> fmt::Result {
    if items.is_empty() {
        return write!(formatter, "  {what}: none");
    }
    write!(formatter, "  {what} ({}):", items.len())?;
    for item in items {
        write!(formatter, "\n    - {item}")?;
    }
    Ok(())
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
        assert!(text.contains("d9 listed pending: true"), "{text}");
        assert!(text.contains("granted 2"), "{text}");
        assert!(text.contains("errors: none"), "{text}");
    }
}
