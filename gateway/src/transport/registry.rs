//! Live sessions by identity: one session per identity (a second connection takes over the
//! first, MQTT 3.1.1 §3.1.4-2, keyed by the certificate's identity and not the client id),
//! close on demand, the state a persistent session keeps while its client is away, and the
//! session cap.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::mqttbytes::QoS;
use tokio::sync::{mpsc, watch, Notify};

use super::acl::{self, Role};
use super::codec::ConnectRefusal;
use super::metrics::TransportMetrics;
use super::{CloseReason, Limits, SessionId};

/// A point for an integration: its topic and payload.
pub(crate) type Delivery = (Arc<str>, Bytes);

/// What other tasks hand a live session; the session owns the receiving side.
#[derive(Debug)]
pub(crate) struct Mailbox {
    /// Wakes the session for `close` and `keys`; a stored permit means no wake is lost.
    pub wake: Notify,
    pub close: Mutex<Option<CloseReason>>,
    /// The newest key set not yet sent: only the latest matters.
    pub keys: Mutex<Option<Bytes>>,
    /// The session's current subscriptions, read by deliveries to filter before queueing.
    pub subscriptions: Mutex<Vec<(String, QoS)>>,
    /// Integrations only: live points, bounded (`Limits::integration_queue`).
    pub deliveries: Option<mpsc::Sender<Delivery>>,
    /// Access changed since these deliveries were queued: the session asks the backend
    /// which may still go before it sends another.
    pub recheck: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Mailbox {
    pub fn close(&self, reason: CloseReason) {
        lock(&self.close).get_or_insert(reason);
        self.wake.notify_one();
    }

    pub fn subscribed(&self, topic: &str) -> Option<QoS> {
        lock(&self.subscriptions)
            .iter()
            .filter(|(filter, _)| acl::matches(topic, filter))
            .map(|(_, qos)| *qos)
            .max_by_key(|qos| *qos as u8)
    }

    pub fn take_close(&self) -> Option<CloseReason> {
        lock(&self.close).take()
    }

    pub fn take_keys(&self) -> Option<Bytes> {
        lock(&self.keys).take()
    }

    /// Asks the session to re-check its queued deliveries (see [`Registry::recheck`]).
    pub fn request_recheck(&self) {
        self.recheck.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub fn take_recheck(&self) -> bool {
        self.recheck.swap(false, Ordering::AcqRel)
    }

    pub fn set_subscriptions(&self, subscriptions: Vec<(String, QoS)>) {
        *lock(&self.subscriptions) = subscriptions;
    }
}

struct Entry {
    session: SessionId,
    /// Whether the session's state outlives its connection (clean session 0).
    persistent: bool,
    serial: Option<Arc<str>>,
    mailbox: Arc<Mailbox>,
    /// Becomes true when the session task has finished (closed and reported).
    ended: watch::Receiver<bool>,
}

impl Entry {
    /// Asks the session to close with `reason`; what to wait on for it to end.
    fn ask_to_close(&self, reason: &CloseReason) -> watch::Receiver<bool> {
        self.mailbox.close(reason.clone());
        self.ended.clone()
    }
}

/// What a persistent session (clean session 0) keeps while its client is away. In memory
/// only: lost on a gateway restart (the client then sees session present 0).
#[derive(Debug, Default)]
pub(crate) struct Persisted {
    pub subscriptions: Vec<(String, QoS)>,
    pub queue: VecDeque<Delivery>,
}

/// A session the registry admitted.
pub(crate) struct Admitted {
    pub session: SessionId,
    pub mailbox: Arc<Mailbox>,
    pub deliveries: Option<mpsc::Receiver<Delivery>>,
    pub ended: watch::Sender<bool>,
    pub took_over: bool,
    /// Present when a persistent session was resumed.
    pub resumed: Option<Persisted>,
}

#[derive(Default)]
struct Tables {
    live: HashMap<Arc<str>, Entry>,
    persisted: HashMap<Arc<str>, Persisted>,
}

pub(crate) struct Registry {
    tables: Mutex<Tables>,
    /// Live integration sessions plus persisted sessions, kept with `tables`: while it is
    /// zero (no integration anywhere) a live point skips the lock and is not rendered.
    listeners: AtomicUsize,
    next_session: AtomicU64,
    draining: AtomicBool,
    pub limits: Limits,
    pub metrics: Arc<TransportMetrics>,
}

impl Registry {
    pub fn new(limits: Limits, metrics: Arc<TransportMetrics>) -> Registry {
        Registry {
            tables: Mutex::new(Tables::default()),
            listeners: AtomicUsize::new(0),
            next_session: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            limits,
            metrics,
        }
    }

    /// Admits a session of `tenant`, taking over a live one of the same identity.
    pub fn admit(
        &self,
        tenant: &Arc<str>,
        role: Role,
        clean: bool,
        serial: Option<Arc<str>>,
    ) -> Result<Admitted, (ConnectRefusal, &'static str)> {
        if self.draining.load(Ordering::Acquire) {
            return Err((ConnectRefusal::ServerUnavailable, "shutting_down"));
        }
        let mut tables = lock(&self.tables);
        let previous = tables.live.get(tenant);
        if previous.is_none() && tables.live.len() >= self.limits.max_sessions {
            return Err((ConnectRefusal::QuotaExceeded, "session_cap"));
        }
        // An account's integration session is one: a reconnect with the same certificate
        // takes it over (a unit's, keyed by its device, is taken over by any certificate of
        // that unit: key rotation). Another certificate of the account is refused rather
        // than evicting it, or two data platforms would take the session from each other
        // in a loop and neither would get the feed.
        if role == Role::Integration && previous.is_some_and(|old| old.serial != serial) {
            return Err((ConnectRefusal::BadClientId, "integration_in_use"));
        }
        let (deliveries, receiver) = match role {
            Role::Integration => {
                let (sender, receiver) = mpsc::channel(self.limits.integration_queue.max(1));
                (Some(sender), Some(receiver))
            }
            Role::Unit => (None, None),
        };
        let mailbox = Arc::new(Mailbox {
            wake: Notify::new(),
            close: Mutex::new(None),
            keys: Mutex::new(None),
            subscriptions: Mutex::new(Vec::new()),
            deliveries,
            recheck: AtomicBool::new(false),
        });
        let (ended, ended_rx) = watch::channel(false);
        let session = self.next_session.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            session,
            persistent: !clean,
            serial,
            mailbox: mailbox.clone(),
            ended: ended_rx,
        };
        if entry.mailbox.deliveries.is_some() {
            self.listeners.fetch_add(1, Ordering::Relaxed);
        }
        let mut taken: Option<Persisted> = None;
        let took_over = match tables.live.insert(tenant.clone(), entry) {
            Some(old) => {
                if old.mailbox.deliveries.is_some() {
                    self.listeners.fetch_sub(1, Ordering::Relaxed);
                }
                old.mailbox.close(CloseReason::TakenOver);
                self.metrics.takeovers.inc();
                // A persistent session taken over (or reconnected before its old connection
                // was seen to end) keeps its state: MQTT 3.1.1 §3.1.2.4. Its subscriptions
                // come from the old session's mailbox; the old one, no longer live, leaves
                // nothing behind when it ends.
                taken = old.persistent.then(|| Persisted {
                    subscriptions: lock(&old.mailbox.subscriptions).clone(),
                    queue: VecDeque::new(),
                });
                true
            }
            None => false,
        };
        let resumed = tables.persisted.remove(tenant);
        if resumed.is_some() {
            self.listeners.fetch_sub(1, Ordering::Relaxed);
        }
        let resumed = resumed.or(taken).filter(|_| !clean);
        if let Some(resumed) = &resumed {
            mailbox.set_subscriptions(resumed.subscriptions.clone());
        }
        Ok(Admitted {
            session,
            mailbox,
            deliveries: receiver,
            ended,
            took_over,
            resumed,
        })
    }

    /// The session `session` of `tenant` ended; a persistent one leaves its state behind.
    pub fn leave(&self, tenant: &Arc<str>, session: SessionId, keep: Option<Persisted>) {
        let mut tables = lock(&self.tables);
        if tables
            .live
            .get(tenant)
            .is_some_and(|e| e.session == session)
        {
            if let Some(old) = tables.live.remove(tenant) {
                if old.mailbox.deliveries.is_some() {
                    self.listeners.fetch_sub(1, Ordering::Relaxed);
                }
            }
            if let Some(state) = keep {
                if tables.persisted.insert(tenant.clone(), state).is_none() {
                    self.listeners.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    pub fn live_sessions(&self) -> usize {
        lock(&self.tables).live.len()
    }

    /// Hands a unit's new key set to its live session, if it is subscribed to its keys.
    pub fn push_keys(&self, tenant: &str, payload: Bytes) {
        let tables = lock(&self.tables);
        if let Some(entry) = tables.live.get(tenant) {
            *lock(&entry.mailbox.keys) = Some(payload);
            entry.mailbox.wake.notify_one();
        }
    }

    /// Whether `tenant` has a live integration session or a persistent session that may
    /// want points; without any integration anywhere, no lock is taken.
    pub fn listening(&self, tenant: &str) -> bool {
        if self.listeners.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let tables = lock(&self.tables);
        tables
            .live
            .get(tenant)
            .is_some_and(|entry| entry.mailbox.deliveries.is_some())
            || tables.persisted.contains_key(tenant)
    }

    /// Queues a live point for an integration's session, or for its persistent session
    /// while it is away; sheds (and counts) when that queue is full.
    pub fn deliver(&self, tenant: &str, topic: &Arc<str>, payload: Bytes) {
        let mut tables = lock(&self.tables);
        if let Some(entry) = tables.live.get(tenant) {
            if entry.mailbox.subscribed(topic).is_none() {
                return;
            }
            if let Some(sender) = &entry.mailbox.deliveries {
                if sender.try_send((topic.clone(), payload)).is_err() {
                    self.metrics.integration_shed.inc();
                }
            }
            return;
        }
        if let Some(state) = tables.persisted.get_mut(tenant) {
            if !state
                .subscriptions
                .iter()
                .any(|(f, _)| acl::matches(topic, f))
            {
                return;
            }
            if state.queue.len() >= self.limits.offline_queue {
                self.metrics.integration_shed.inc();
                return;
            }
            state.queue.push_back((topic.clone(), payload));
        }
    }

    /// Access changed: every persistent session's queue keeps only what `retain` keeps (for
    /// its tenant), at once, and every live integration session re-checks its own queue
    /// before it sends another point. What is dropped is counted.
    pub fn recheck(&self, retain: impl Fn(&str, &mut VecDeque<Delivery>)) {
        let mut tables = lock(&self.tables);
        for (tenant, state) in tables.persisted.iter_mut() {
            let before = state.queue.len();
            retain(tenant, &mut state.queue);
            self.metrics
                .integration_withdrawn
                .inc_by((before - state.queue.len()) as u64);
        }
        for entry in tables.live.values() {
            if entry.mailbox.deliveries.is_some() {
                entry.mailbox.request_recheck();
            }
        }
    }

    /// Asks every live session `matches` picks to close with `reason`; returns what to
    /// wait on for each to end.
    fn close_matching(
        &self,
        reason: &CloseReason,
        matches: impl Fn(&str, &Entry) -> bool,
    ) -> Vec<watch::Receiver<bool>> {
        let tables = lock(&self.tables);
        tables
            .live
            .iter()
            .filter(|(tenant, entry)| matches(tenant, entry))
            .map(|(_, entry)| entry.ask_to_close(reason))
            .collect()
    }

    /// Closes the live session of `tenant` and waits (bounded) until it has ended. A map
    /// lookup, not a scan: deregistration calls it with up to 18,000 sessions live.
    pub async fn close(&self, tenant: &str, reason: CloseReason) {
        let waiting = lock(&self.tables)
            .live
            .get(tenant)
            .map(|entry| entry.ask_to_close(&reason));
        wait_all(waiting.into_iter().collect(), Duration::from_secs(5)).await;
    }

    /// Closes every live session presented with one of `serials`; waits until they ended.
    pub async fn close_serials(&self, serials: &[String]) {
        let waiting = self.close_matching(&CloseReason::Revoked, |_, entry| {
            entry
                .serial
                .as_deref()
                .is_some_and(|serial| serials.iter().any(|s| s == serial))
        });
        wait_all(waiting, Duration::from_secs(5)).await;
    }

    /// Refuses new sessions and asks every live one to finish its acknowledgements and
    /// close; waits until all have ended or `within` passed.
    pub async fn drain(&self, within: Duration) {
        self.draining.store(true, Ordering::Release);
        let waiting = self.close_matching(&CloseReason::ShuttingDown, |_, _| true);
        wait_all(waiting, within).await;
    }
}

/// Waits, for at most `within` in all, until every one of the sessions has ended.
async fn wait_all(waiting: Vec<watch::Receiver<bool>>, within: Duration) {
    let all = futures_util::future::join_all(waiting.into_iter().map(|mut ended| async move {
        let _ = ended.wait_for(|done| *done).await;
    }));
    let _ = tokio::time::timeout(within, all).await;
}
