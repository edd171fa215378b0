//! `KeyHolder`: the key-handling part of a unit's firmware on top of a `SimUnit` session.
//! It subscribes to the unit's retained key set, keeps the newest version, acknowledges
//! every set it receives on `/tenants/{d}/keys/ack`, and decides access attempts against
//! the set it holds, reporting each one on `/tenants/{d}/events/access` (DESIGN.md
//! section 4, rule 6). The rules themselves are pure and live in `keyset.rs`.
//!
//! It also remembers *when* it took each set (a bounded history), because that moment is
//! what the key scenario measures: the gateway promises the new set reaches online units
//! before the key call answers, and only the unit side can say when it really arrived.
//!
//! The holder reads the session's messages in a task of its own, so a unit acks at once,
//! as firmware would, whatever the caller is doing. It therefore owns the session's inbox:
//! messages on other topics are counted and dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rumqttc::QoS;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::keyset::{offer, AccessReport, Decision, KeySet, Offer};
use super::{ReceivedMessage, SimUnit, UnitError};
use crate::telemetry::now_us;
use crate::topics;

/// How long the reading task waits for a message before checking the session again.
const POLL: Duration = Duration::from_millis(500);
/// How long an acknowledgement or an access report may wait for the broker's PUBACK.
const PUBACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `start` waits for the broker to grant the key subscription.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `stop` waits for the reading task to end before aborting it.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Sets remembered with the moment they were taken; enough for every change of a scenario
/// to be looked up after the fact, bounded so a long soak cannot grow it.
const HISTORY: usize = 256;

/// A set the unit took, and when (µs since the epoch, the simulator's clock).
#[derive(Debug, Clone)]
pub struct TakenSet {
    pub set: Arc<KeySet>,
    pub taken_us: u64,
}

/// What the holder has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HolderStats {
    /// Messages on the key topic, readable or not.
    pub sets_received: u64,
    /// Sets that replaced the held one (a higher version).
    pub sets_taken: u64,
    /// Sets with the held version again, or an older one.
    pub sets_not_newer: u64,
    /// Messages on the key topic that were not a key set; never acknowledged.
    pub sets_malformed: u64,
    /// `{version}` acknowledgements the broker confirmed.
    pub acks_sent: u64,
    pub ack_failures: u64,
    /// Messages on other topics, dropped.
    pub other_messages: u64,
}

#[derive(Default)]
struct HolderState {
    current: Option<Arc<KeySet>>,
    history: VecDeque<TakenSet>,
    stats: HolderStats,
    last_error: Option<String>,
}

struct HolderShared {
    state: Mutex<HolderState>,
    /// Counts taken sets; waiters watch it instead of polling.
    taken: watch::Sender<u64>,
}

impl HolderShared {
    fn state(&self) -> MutexGuard<'_, HolderState> {
        // Plain bookkeeping that stays consistent between statements; keep going if a
        // holder of the lock panicked.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn note_error(&self, error: String) {
        tracing::warn!("{error}");
        self.state().last_error = Some(error);
    }
}

/// The firmware's key handling for one unit session. Stop it with `stop` to get the
/// session back (for a clean disconnect); dropping it ends its task too.
pub struct KeyHolder {
    unit: Arc<SimUnit>,
    shared: Arc<HolderShared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl KeyHolder {
    /// Starts reading the session's inbox, subscribes to `/tenants/{d}/keys` and returns
    /// once the broker granted the subscription; a retained set arrives right after.
    pub async fn start(unit: Arc<SimUnit>) -> Result<KeyHolder, UnitError> {
        let shared = Arc::new(HolderShared {
            state: Mutex::new(HolderState::default()),
            taken: watch::Sender::new(0),
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(read_inbox(unit.clone(), shared.clone(), stop_rx));
        let holder = KeyHolder {
            unit,
            shared,
            stop,
            task: Some(task),
        };
        let filter = topics::keys(holder.unit.client_id());
        let subscribed = holder.unit.subscribe(&filter, QoS::AtLeastOnce);
        match tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribed).await {
            Ok(outcome) => outcome?,
            Err(_) => return Err(UnitError::Timeout(format!("the SUBACK for {filter}"))),
        }
        Ok(holder)
    }

    pub fn device_id(&self) -> &str {
        self.unit.client_id()
    }

    pub fn unit(&self) -> &Arc<SimUnit> {
        &self.unit
    }

    /// The set held now, if any arrived.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.shared.state().current.clone()
    }

    pub fn version(&self) -> Option<u64> {
        self.current().map(|set| set.version)
    }

    pub fn stats(&self) -> HolderStats {
        self.shared.state().stats
    }

    /// The last problem seen (an unreadable set, a failed ack, the session ending).
    pub fn last_error(&self) -> Option<String> {
        self.shared.state().last_error.clone()
    }

    /// The first set taken at or after `since_us` for which `accept` holds, waiting up to
    /// `timeout` for one to arrive. Looking at sets from `since_us` on (not just the
    /// current one) gives the moment the change arrived even when a later set replaced it
    /// before the caller asked.
    pub async fn wait_for_set(
        &self,
        since_us: u64,
        accept: impl Fn(&KeySet) -> bool,
        timeout: Duration,
    ) -> Option<TakenSet> {
        let deadline = Instant::now() + timeout;
        let mut taken = self.shared.taken.subscribe();
        loop {
            taken.borrow_and_update();
            let found = self
                .shared
                .state()
                .history
                .iter()
                .find(|entry| entry.taken_us >= since_us && accept(&entry.set))
                .cloned();
            if found.is_some() {
                return found;
            }
            match tokio::time::timeout_at(deadline, taken.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }

    /// Waits until the unit holds `version` or a later one; returns that set.
    pub async fn wait_for_version(&self, version: u64, timeout: Duration) -> Option<TakenSet> {
        self.wait_for_set(0, |set| set.version >= version, timeout)
            .await
    }

    /// What the unit would decide now about `credential` at `at_ms`, without reporting.
    pub fn decide(&self, credential: &str, at_ms: u64) -> Decision {
        match self.current() {
            Some(set) => set.decide(credential, at_ms),
            None => super::keyset::decide(&[], credential, at_ms),
        }
    }

    /// An operator presents `credential` at `at_ms` (the unit's clock, ms since the epoch):
    /// the unit decides against the set it holds and reports the attempt at QoS 1. Returns
    /// the decision once the broker acknowledged the report.
    pub async fn try_access(&self, credential: &str, at_ms: u64) -> Result<Decision, UnitError> {
        let decision = self.decide(credential, at_ms);
        let report = AccessReport::new(&decision, credential, at_ms);
        let payload =
            serde_json::to_vec(&report).map_err(|error| UnitError::Encode(error.to_string()))?;
        let topic = topics::access_events(self.unit.client_id());
        self.unit
            .publish(&topic, payload, QoS::AtLeastOnce, false)
            .await?
            .wait_timeout(PUBACK_TIMEOUT)
            .await?;
        Ok(decision)
    }

    /// Ends the reading task and hands the session back.
    pub async fn stop(mut self) -> Arc<SimUnit> {
        self.stop.send_replace(true);
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(STOP_TIMEOUT, &mut task).await.is_err() {
                task.abort();
            }
        }
        self.unit.clone()
    }
}

impl Drop for KeyHolder {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The reading task: takes key sets and acks them until stopped or the session ends.
async fn read_inbox(
    unit: Arc<SimUnit>,
    shared: Arc<HolderShared>,
    mut stop: watch::Receiver<bool>,
) {
    let keys_topic = topics::keys(unit.client_id());
    let ack_topic = topics::keys_ack(unit.client_id());
    loop {
        let message = tokio::select! {
            _ = stop.changed() => return,
            message = unit.next_message(POLL) => message,
        };
        let Some(message) = message else {
            if unit.is_connected() {
                continue;
            }
            shared.note_error(format!("unit {}: the session ended", unit.client_id()));
            return;
        };
        if message.topic != keys_topic {
            shared.state().stats.other_messages += 1;
            continue;
        }
        if let Some(version) = take(&shared, &message, unit.client_id()) {
            acknowledge(&unit, &shared, &ack_topic, version).await;
        }
    }
}

/// Offers one key-set message to the held set; returns the version to acknowledge (the
/// one held afterwards), or `None` for an unreadable message.
fn take(shared: &HolderShared, message: &ReceivedMessage, device_id: &str) -> Option<u64> {
    let parsed = KeySet::parse(&message.payload);
    let mut state = shared.state();
    state.stats.sets_received += 1;
    let incoming = match parsed {
        Ok(set) => set,
        Err(error) => {
            state.stats.sets_malformed += 1;
            drop(state);
            shared.note_error(format!("unit {device_id}: unreadable key set: {error}"));
            return None;
        }
    };
    let taken_us = now_us();
    match offer(&mut state.current, incoming) {
        Offer::Taken { .. } => {
            state.stats.sets_taken += 1;
            let set = state.current.clone()?;
            let version = set.version;
            if state.history.len() == HISTORY {
                state.history.pop_front();
            }
            state.history.push_back(TakenSet { set, taken_us });
            drop(state);
            shared.taken.send_modify(|count| *count += 1);
            Some(version)
        }
        // Acknowledge what is held, not what arrived: `{version}` means "I hold this".
        Offer::Same => {
            state.stats.sets_not_newer += 1;
            state.current.as_ref().map(|set| set.version)
        }
        Offer::Stale { held } => {
            state.stats.sets_not_newer += 1;
            Some(held)
        }
    }
}

/// Publishes `{version}` and counts the broker's PUBACK in the background, so the next
/// set is read at once however slow the broker is.
async fn acknowledge(unit: &SimUnit, shared: &Arc<HolderShared>, topic: &str, version: u64) {
    let payload = serde_json::json!({ "version": version }).to_string();
    match unit.publish(topic, payload, QoS::AtLeastOnce, false).await {
        Ok(waiter) => {
            let shared = shared.clone();
            let device_id = unit.client_id().to_owned();
            tokio::spawn(async move {
                match waiter.wait_timeout(PUBACK_TIMEOUT).await {
                    Ok(()) => shared.state().stats.acks_sent += 1,
                    Err(error) => {
                        shared.state().stats.ack_failures += 1;
                        shared.note_error(format!(
                            "unit {device_id}: ack of key set {version}: {error}"
                        ));
                    }
                }
            });
        }
        Err(error) => {
            shared.state().stats.ack_failures += 1;
            shared.note_error(format!(
                "unit {}: ack of key set {version}: {error}",
                unit.client_id()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn shared() -> HolderShared {
        HolderShared {
            state: Mutex::new(HolderState::default()),
            taken: watch::Sender::new(0),
        }
    }

    fn message(payload: &str) -> ReceivedMessage {
        ReceivedMessage {
            topic: "/tenants/d1/keys".into(),
            payload: Bytes::from(payload.to_owned()),
            retain: true,
            qos: QoS::AtLeastOnce,
        }
    }

    #[test]
    fn taking_acks_the_held_version_and_keeps_history() {
        let shared = shared();
        let set = |version: u64| format!(r#"{{"version":{version},"keys":[]}}"#);
        assert_eq!(take(&shared, &message(&set(2)), "d1"), Some(2));
        assert_eq!(take(&shared, &message(&set(2)), "d1"), Some(2));
        assert_eq!(take(&shared, &message(&set(1)), "d1"), Some(2));
        assert_eq!(take(&shared, &message(&set(5)), "d1"), Some(5));
        assert_eq!(take(&shared, &message("garbage"), "d1"), None);
        let state = shared.state();
        assert_eq!(state.current.as_ref().map(|set| set.version), Some(5));
        let versions: Vec<u64> = state
            .history
            .iter()
            .map(|taken| taken.set.version)
            .collect();
        assert_eq!(versions, [2, 5]);
        assert_eq!(
            state.stats,
            HolderStats {
                sets_received: 5,
                sets_taken: 2,
                sets_not_newer: 2,
                sets_malformed: 1,
                ..HolderStats::default()
            }
        );
        assert!(state
            .last_error
            .as_deref()
            .is_some_and(|error| error.contains("d1")));
        assert_eq!(*shared.taken.borrow(), 2);
    }

    #[test]
    fn history_is_bounded() {
        let shared = shared();
        for version in 0..(HISTORY as u64 + 10) {
            let payload = format!(r#"{{"version":{version},"keys":[]}}"#);
            take(&shared, &message(&payload), "d1");
        }
        let state = shared.state();
        assert_eq!(state.history.len(), HISTORY);
        assert_eq!(
            state.history.front().map(|taken| taken.set.version),
            Some(10)
        );
    }
}
