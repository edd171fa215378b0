//! The checking half of a key run, all from outside: each unit's held set and device status
//! against what the key API shows, then access attempts whose decisions must match the
//! API's keys, and whose events must come back from history and the owner's live stream.
//!
//! The expected decision is the unit rule (`unit::decide`) applied to the keys
//! `GET /v1/keys?asset_id=` shows for the unit's asset, so the only way a decision can
//! differ is the unit holding something other than what the API says (`plan::judge` names
//! the one allowed difference). Each unit tries, one after another: every credential its
//! asset's listing shows (valid now: granted; the future key: not yet valid), the
//! short-lived key after it ended (expired), the deleted tag (unknown now) and a credential
//! no key has. Attempts get distinct `ts` per unit, which is how events are found again.
//! Besides, each unit is asked (not made to report) about every key's window edges.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{stream, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::plan::{duplicate_pins, judge, outcome_label, unknown_credential};
use super::verdict::push_summary;
use super::KeyRun;
use crate::api::{AccessEvent, ApiError, AssetId, HistoryQuery, KeyQuery, KeyView, SseStream};
use crate::scenario::progress_bar;
use crate::telemetry::{next_unique_ts, now_ms, rfc3339_from_ms};
use crate::unit::{credential_hint, decide, Decision, HeldKey, KeyHolder};

/// By machine index: the keys the API lists for its asset; `None` if the listing failed.
pub(super) type Listings = Vec<Option<Vec<KeyView>>>;

/// How close to `valid_to` a key may be and still be missing or extra on a unit: the
/// scheduler's drop is on its way.
const SET_GRACE_MS: u64 = 2_000;
const STATUS_POLL: Duration = Duration::from_millis(200);
const HISTORY_POLL: Duration = Duration::from_millis(250);
const LIVE_POLL: Duration = Duration::from_millis(100);
/// Opening a stream has no request timeout of its own (the body never ends).
const STREAM_OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// One attempt a unit reported and the broker acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reported {
    pub(super) asset_id: AssetId,
    pub(super) ts_ms: u64,
    pub(super) decision: Decision,
    pub(super) hint: String,
}

/// Whether `event` is the stored or streamed form of `reported`, field for field.
pub(super) fn same_event(reported: &Reported, event: &AccessEvent) -> bool {
    event.asset_id == reported.asset_id
        && event.ts_ms == reported.ts_ms
        && event.result == reported.decision.result
        && event.key_id == reported.decision.key_id
        && event.reason.as_deref() == reported.decision.reason.map(|reason| reason.as_str())
        && event.credential_hint.as_deref() == Some(reported.hint.as_str())
}

/// What one unit's attempts gave.
#[derive(Debug, Default)]
struct UnitAttempts {
    tried: u64,
    window_probes: u64,
    reported: Vec<Reported>,
    mismatches: Vec<String>,
    errors: Vec<String>,
}

impl KeyRun {
    /// `GET /v1/keys?asset_id=` for every asset.
    pub(super) async fn listings(&self) -> Listings {
        stream::iter(&self.assets)
            .map(|asset| async move {
                let query = KeyQuery {
                    asset_id: Some(asset.clone()),
                };
                match self.admin.list_keys(&query).await {
                    Ok(keys) => Some(keys),
                    Err(error) => {
                        self.errors
                            .push(format!("listing the keys of {asset}: {error}"));
                        None
                    }
                }
            })
            .buffered(self.config.run.parallelism)
            .collect()
            .await
    }

    /// Each listing shows only keys of its asset, every live key of the run on it, no
    /// deleted one, and no keypad PIN twice.
    pub(super) fn check_listings(&self, listings: &Listings) {
        let now = now_ms();
        let mut problems = Vec::new();
        let mut all: Vec<KeyView> = Vec::new();
        for (machine, listing) in listings.iter().enumerate() {
            let Some(listing) = listing else {
                continue;
            };
            let asset = &self.assets[machine];
            for key in listing {
                if !key.asset_ids.contains(asset) {
                    problems.push(format!("{asset} lists key {}, not one of its own", key.id));
                }
                if !all.iter().any(|seen| seen.id == key.id) {
                    all.push(key.clone());
                }
            }
            let covers = |key: &&KeyView| key.asset_ids.contains(asset);
            for (_, key) in self.keys.iter().filter(|(_, key)| covers(&key)) {
                let live = key.valid_to_ms().is_some_and(|to| to > now);
                if live && !listing.iter().any(|listed| listed.id == key.id) {
                    problems.push(format!("{asset} does not list key {}", key.id));
                }
            }
            for (_, key) in self.deleted.iter().filter(|(_, key)| covers(&key)) {
                if listing.iter().any(|listed| listed.id == key.id) {
                    problems.push(format!("{asset} still lists deleted key {}", key.id));
                }
            }
        }
        for (asset, pin) in duplicate_pins(&all) {
            problems.push(format!("{asset} has keypad PIN {pin} on more than one key"));
        }
        push_summary(&self.checks, "key listings", &problems);
    }

    /// Each online unit must hold exactly the keys its asset's listing shows as valid now
    /// or later, with the same fields (the contract's "full set of keys valid now or in
    /// the future").
    pub(super) fn check_held_sets(&mut self, listings: &Listings) {
        let now = now_ms();
        let near_end = |key_end: u64| key_end.abs_diff(now) <= SET_GRACE_MS;
        let mut problems = Vec::new();
        let mut units = 0;
        for (machine, listing) in listings.iter().enumerate() {
            let (Some(holder), Some(listing)) = (&self.holders[machine], listing) else {
                continue;
            };
            let device = &self.machines[machine].device.id;
            let expected: Vec<HeldKey> = listing
                .iter()
                .filter_map(HeldKey::from_view)
                .filter(|key| key.valid_to_ms > now)
                .collect();
            let held = holder
                .current()
                .map(|set| set.keys.clone())
                .unwrap_or_default();
            let before = problems.len();
            for key in &expected {
                match held.iter().find(|held| held.id == key.id) {
                    None if !near_end(key.valid_to_ms) => {
                        problems.push(format!("unit {device} lacks key {}", key.id))
                    }
                    Some(held) if held != key => problems.push(format!(
                        "unit {device} holds {held:?} where the API shows {key:?}"
                    )),
                    _ => {}
                }
            }
            for key in &held {
                let listed = expected.iter().any(|expected| expected.id == key.id);
                if !listed && !near_end(key.valid_to_ms) {
                    problems.push(format!(
                        "unit {device} holds key {} that the API does not show as valid now \
                         or later",
                        key.id
                    ));
                }
            }
            if problems.len() > before {
                units += 1;
            }
        }
        self.report.set_mismatches = units;
        push_summary(&self.checks, "held key sets", &problems);
    }

    /// Each online unit's status must say it is online and that the version it holds was
    /// pushed and acked, polled until the propagation timeout.
    pub(super) async fn check_statuses(&mut self) {
        let deadline = Instant::now() + self.config.propagation_timeout;
        let this = &*self;
        let online = this
            .holders
            .iter()
            .enumerate()
            .filter_map(|(machine, holder)| Some((machine, holder.as_ref()?)));
        let problems: Vec<String> = stream::iter(online)
            .map(|(machine, holder)| async move {
                let device = &this.machines[machine].device.id;
                loop {
                    let held = holder.version();
                    let status = this.admin.device_status(device).await;
                    let problem = match status {
                        Ok(status)
                            if status.online
                                && status.key_version_pushed == held
                                && status.key_version_acked == held =>
                        {
                            return None
                        }
                        Ok(status) => format!(
                            "status of {device}: online {}, key version pushed {:?}, acked \
                             {:?}; the unit holds {held:?}",
                            status.online, status.key_version_pushed, status.key_version_acked
                        ),
                        Err(error) => format!("status of {device}: {error}"),
                    };
                    if Instant::now() >= deadline {
                        return Some(problem);
                    }
                    tokio::time::sleep(STATUS_POLL).await;
                }
            })
            .buffer_unordered(this.config.run.parallelism)
            .filter_map(std::future::ready)
            .collect()
            .await;
        self.report.status_mismatches = problems.len() as u64;
        push_summary(&self.checks, "device status", &problems);
    }

    /// Every online unit tries its credentials; decisions are judged, then the events are
    /// looked for in history and on the owner's live stream.
    pub(super) async fn try_access_everywhere(&mut self, listings: &Listings) {
        let live = Arc::new(Mutex::new(Vec::new()));
        let (stop_live, stop_live_rx) = watch::channel(false);
        let opened = tokio::time::timeout(STREAM_OPEN_TIMEOUT, self.admin.stream("/v1/stream"));
        let reader = match opened.await {
            Ok(Ok(stream)) => Some(tokio::spawn(read_live(stream, live.clone(), stop_live_rx))),
            Ok(Err(error)) => {
                self.errors
                    .push(format!("opening the owner's live stream: {error}"));
                None
            }
            Err(_) => {
                self.errors.push(format!(
                    "opening the owner's live stream: no answer within {STREAM_OPEN_TIMEOUT:?}"
                ));
                None
            }
        };
        let online: Vec<usize> = (0..self.machines.len())
            .filter(|&machine| self.holders[machine].is_some() && listings[machine].is_some())
            .collect();
        let progress = progress_bar(online.len() as u64, "units tried", self.config.run.quiet);
        let this = &*self;
        let results: Vec<UnitAttempts> = stream::iter(&online)
            .map(|&machine| {
                let progress = &progress;
                async move {
                    let attempts = this.attempts_of(machine, listings).await;
                    progress.inc(1);
                    attempts
                }
            })
            .buffer_unordered(this.config.run.parallelism)
            .collect()
            .await;
        progress.finish_and_clear();

        let mut reported = Vec::new();
        let mut mismatches = Vec::new();
        for result in results {
            let tally = &mut self.report.access;
            tally.attempts += result.tried;
            tally.window_probes += result.window_probes;
            tally.events_reported += result.reported.len() as u64;
            for attempt in &result.reported {
                *tally
                    .outcomes
                    .entry(outcome_label(&attempt.decision))
                    .or_default() += 1;
            }
            mismatches.extend(result.mismatches);
            for error in result.errors {
                self.errors.push(error);
            }
            reported.extend(result.reported);
        }
        self.report.access.decision_mismatches = mismatches.len() as u64;
        push_summary(&self.checks, "access decisions", &mismatches);

        let deadline = Instant::now() + self.config.event_timeout;
        self.report.access.events_stored = self.find_stored(&reported, deadline).await;
        let mut events_live = count_live(&reported, &live);
        while reader.is_some() && events_live < reported.len() && Instant::now() < deadline {
            tokio::time::sleep(LIVE_POLL).await;
            events_live = count_live(&reported, &live);
        }
        stop_live.send_replace(true);
        if let Some(reader) = reader {
            match reader.await {
                Ok(problems) => push_summary(&self.errors, "owner's live stream", &problems),
                Err(error) => self
                    .errors
                    .push(format!("the live stream reader failed: {error}")),
            }
        }
        self.report.access.events_live = events_live as u64;
        if events_live < reported.len() {
            self.checks.push(format!(
                "{} of {} reported attempts never reached the owner's live stream",
                reported.len() - events_live,
                reported.len()
            ));
        }
    }

    /// One unit's attempts, one after another with distinct `ts`.
    async fn attempts_of(&self, machine: usize, listings: &Listings) -> UnitAttempts {
        let mut outcome = UnitAttempts::default();
        let (Some(holder), Some(listing)) = (&self.holders[machine], &listings[machine]) else {
            return outcome;
        };
        let asset = &self.assets[machine];
        let api_keys: Vec<HeldKey> = listing.iter().filter_map(HeldKey::from_view).collect();
        let now = now_ms();
        let ended_or_deleted = self
            .deleted
            .iter()
            .chain(
                self.keys
                    .iter()
                    .filter(|(_, key)| key.valid_to_ms().is_some_and(|to| to <= now)),
            )
            .map(|(_, key)| key)
            .filter(|key| key.asset_ids.contains(asset));
        let mut credentials: Vec<String> = Vec::new();
        for key in listing.iter().chain(ended_or_deleted) {
            if !credentials.contains(&key.credential) {
                credentials.push(key.credential.clone());
            }
        }
        credentials.push(unknown_credential(&self.run_id, machine));
        outcome.window_probes = window_probes(holder, listing, &api_keys, &mut outcome.mismatches);
        let mut last_ts = None;
        for credential in credentials {
            let at = next_unique_ts(last_ts, now_ms());
            last_ts = Some(at);
            let expected = decide(&api_keys, &credential, at);
            outcome.tried += 1;
            match holder.try_access(&credential, at).await {
                Ok(decision) => {
                    if let Err(problem) = judge(&decision, &expected) {
                        outcome.mismatches.push(format!(
                            "unit {} at {at}, credential {}: {problem}",
                            holder.device_id(),
                            credential_hint(&credential)
                        ));
                    }
                    outcome.reported.push(Reported {
                        asset_id: asset.clone(),
                        ts_ms: at,
                        decision,
                        hint: credential_hint(&credential),
                    });
                }
                Err(error) => outcome.errors.push(format!(
                    "unit {}: reporting an access attempt: {error}",
                    holder.device_id()
                )),
            }
        }
        outcome
    }

    /// How many reported attempts `GET /v1/assets/{x}/access-events` returns, field for
    /// field, polling each asset until all of its attempts are there or `deadline` passes.
    async fn find_stored(&self, reported: &[Reported], deadline: Instant) -> u64 {
        let assets: BTreeSet<&AssetId> = reported.iter().map(|attempt| &attempt.asset_id).collect();
        let outcomes: Vec<(usize, Vec<String>)> = stream::iter(assets)
            .map(|asset| {
                let mine: Vec<&Reported> = reported
                    .iter()
                    .filter(|attempt| &attempt.asset_id == asset)
                    .collect();
                async move { self.find_stored_of(asset, &mine, deadline).await }
            })
            .buffer_unordered(self.config.run.parallelism)
            .collect()
            .await;
        let mut problems = Vec::new();
        let mut found = 0;
        for (count, asset_problems) in outcomes {
            found += count;
            problems.extend(asset_problems);
        }
        push_summary(&self.checks, "stored access events", &problems);
        found as u64
    }

    async fn find_stored_of(
        &self,
        asset: &AssetId,
        mine: &[&Reported],
        deadline: Instant,
    ) -> (usize, Vec<String>) {
        let first = mine.iter().map(|attempt| attempt.ts_ms).min().unwrap_or(0);
        let last = mine.iter().map(|attempt| attempt.ts_ms).max().unwrap_or(0);
        let query = HistoryQuery {
            from: rfc3339_from_ms(first.saturating_sub(1)),
            to: rfc3339_from_ms(last + 1),
            cursor: None,
            limit: Some(1000),
        };
        loop {
            let outcome = self.admin.access_events_all(asset, &query).await;
            let give_up = Instant::now() >= deadline;
            match outcome {
                Ok(events) => {
                    let found = mine
                        .iter()
                        .filter(|attempt| events.iter().any(|event| same_event(attempt, event)))
                        .count();
                    if found == mine.len() {
                        return (found, Vec::new());
                    }
                    if give_up {
                        return (found, missing_events(mine, &events));
                    }
                }
                Err(error) if give_up => {
                    return (0, vec![format!("access events of {asset}: {error}")]);
                }
                Err(_) => {}
            }
            tokio::time::sleep(HISTORY_POLL).await;
        }
    }
}

/// The unit's rule at the edges of every key it should hold, without reporting: the
/// gateway refuses event times far from its clock, so the instants around a window's
/// start and end (an hour or more away) can only be asked, not reported. Each probe's
/// decision must agree with the API's keys at the same instant.
fn window_probes(
    holder: &KeyHolder,
    listing: &[KeyView],
    api_keys: &[HeldKey],
    mismatches: &mut Vec<String>,
) -> u64 {
    let now = now_ms();
    let mut probes = 0;
    for key in listing {
        let (Some(from), Some(to)) = (key.valid_from_ms(), key.valid_to_ms()) else {
            continue;
        };
        if to <= now {
            continue;
        }
        for at in [from.saturating_sub(1), from, to.saturating_sub(1), to] {
            probes += 1;
            let unit = holder.decide(&key.credential, at);
            let expected = decide(api_keys, &key.credential, at);
            if let Err(problem) = judge(&unit, &expected) {
                mismatches.push(format!(
                    "unit {} probed at {at} (key {} window edge): {problem}",
                    holder.device_id(),
                    key.id
                ));
            }
        }
    }
    probes
}

/// For each reported attempt without its event: stored differently, or not at all.
fn missing_events(mine: &[&Reported], events: &[AccessEvent]) -> Vec<String> {
    mine.iter()
        .filter(|attempt| !events.iter().any(|event| same_event(attempt, event)))
        .map(
            |attempt| match events.iter().find(|event| event.ts_ms == attempt.ts_ms) {
                Some(event) => format!(
                    "{} at {}: stored as {event:?}, reported {:?}",
                    attempt.asset_id, attempt.ts_ms, attempt.decision
                ),
                None => format!("{} at {}: not stored", attempt.asset_id, attempt.ts_ms),
            },
        )
        .collect()
}

fn lock(live: &Mutex<Vec<AccessEvent>>) -> MutexGuard<'_, Vec<AccessEvent>> {
    live.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How many reported attempts arrived on the live stream so far.
fn count_live(reported: &[Reported], live: &Mutex<Vec<AccessEvent>>) -> usize {
    let live = lock(live);
    reported
        .iter()
        .filter(|attempt| live.iter().any(|event| same_event(attempt, event)))
        .count()
}

/// Collects `event: access` from the owner's stream until stopped; returns what went
/// wrong (an unreadable event is noted once, a broken stream ends the reading).
async fn read_live(
    mut stream: SseStream,
    live: Arc<Mutex<Vec<AccessEvent>>>,
    mut stop: watch::Receiver<bool>,
) -> Vec<String> {
    let mut problems = Vec::new();
    loop {
        let event = tokio::select! {
            _ = stop.changed() => return problems,
            event = stream.next() => event,
        };
        match event {
            None => {
                problems.push("it ended before the run did".to_owned());
                return problems;
            }
            Some(Ok(event)) => match event.access() {
                Some(Ok(access)) => lock(&live).push(access),
                Some(Err(error)) if problems.is_empty() => {
                    problems.push(format!("an access event could not be read: {error}"))
                }
                _ => {}
            },
            Some(Err(error @ ApiError::Decode { .. })) if problems.is_empty() => {
                problems.push(format!("an event could not be read: {error}"))
            }
            Some(Err(ApiError::Decode { .. })) => {}
            Some(Err(error)) => {
                problems.push(format!("it broke: {error}"));
                return problems;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AccessResult, DenyReason, KeyId};

    fn reported() -> Reported {
        Reported {
            asset_id: AssetId::new("a0"),
            ts_ms: 1_750_000_000_000,
            decision: Decision::denied(DenyReason::Expired, Some(KeyId::new("k1"))),
            hint: "***456".into(),
        }
    }

    fn event() -> AccessEvent {
        AccessEvent {
            asset_id: AssetId::new("a0"),
            ts: "2025-06-15T15:06:40Z".into(),
            ts_ms: 1_750_000_000_000,
            key_id: Some(KeyId::new("k1")),
            credential_hint: Some("***456".into()),
            result: AccessResult::Denied,
            reason: Some("expired".into()),
        }
    }

    #[test]
    fn events_match_field_for_field() {
        assert!(same_event(&reported(), &event()));
        let differs = |edit: fn(&mut AccessEvent)| {
            let mut event = event();
            edit(&mut event);
            assert!(!same_event(&reported(), &event), "{event:?}");
        };
        differs(|event| event.asset_id = AssetId::new("a1"));
        differs(|event| event.ts_ms += 1);
        differs(|event| event.key_id = None);
        differs(|event| event.credential_hint = None);
        differs(|event| event.result = AccessResult::Granted);
        differs(|event| event.reason = Some("unknown_credential".into()));
    }

    #[test]
    fn missing_events_say_whether_stored_differently() {
        let attempt = reported();
        let mut other = attempt.clone();
        other.ts_ms += 5;
        let mut wrong = event();
        wrong.reason = None;
        let problems = missing_events(&[&attempt, &other], &[wrong]);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].contains("stored as"), "{problems:?}");
        assert!(problems[1].ends_with("not stored"), "{problems:?}");
        assert!(missing_events(&[&attempt], &[event()]).is_empty());
    }

    #[test]
    fn live_events_are_counted_once_per_attempt() {
        let live = Mutex::new(vec![event(), event()]);
        let mut other = reported();
        other.ts_ms += 1;
        assert_eq!(count_live(&[reported(), other], &live), 1);
    }
}
