//! The life of one idle unit in the scale run: open its session (at most `connect_slots`
//! openings at a time), subscribe to its key set at QoS 1 and take the (retained) set the
//! broker sends, acknowledging it, then stay connected, keeping the session alive and
//! answering the run's commands (a ping round, a probe point, the clean end) until told to
//! stop. That is an idle unit: connected, subscribed, holding its key set.
//!
//! Everything a unit measures goes into the shared [`Tally`], so fifty thousand units cost
//! fifty thousand small tasks and no per-unit results to collect.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::mqttbytes::v4::{Packet, Publish, SubAck, SubscribeReasonCode};
use rumqttc::mqttbytes::QoS;
use tokio::sync::{watch, Semaphore};
use tokio::time::{Instant, MissedTickBehavior};

use super::conn::{packet_name, Dial, Failure, Identity, Session};
use crate::stats::LatencyRecorder;
use crate::telemetry::{now_ms, now_us, TelemetryPayload};
use crate::topics;
use crate::unit::KeySet;

/// What the run asks of every connected unit, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Stay connected and keep the session alive.
    Hold,
    /// Send one PINGREQ now and time its PINGRESP.
    PingRound,
    /// Probe units publish one telemetry point at QoS 1 and time its PUBACK.
    Probe,
    /// DISCONNECT cleanly and end.
    Stop,
}

/// The first failure of the run, and how many units were connected when it happened: the
/// "first limit".
#[derive(Debug, Clone)]
pub(crate) struct FirstFailure {
    pub(crate) failure: Failure,
    pub(crate) connected_before: u64,
    pub(crate) after: Duration,
}

/// Counters and latencies shared by every unit task.
#[derive(Debug)]
pub(crate) struct Tally {
    started: Instant,
    /// Sessions open right now (the timeline's counter counts openings).
    pub(crate) open: AtomicU64,
    /// Sessions ever opened.
    pub(crate) opened: Arc<AtomicU64>,
    pub(crate) failed: AtomicU64,
    /// Failed openings after which no unit tries any more.
    max_failures: u64,
    give_up: AtomicBool,
    /// Units that never tried because the run gave up opening.
    pub(crate) skipped: AtomicU64,
    /// Probe units with an open session.
    pub(crate) probes_open: AtomicU64,
    /// Sessions the broker closed while the run held them.
    pub(crate) dropped: AtomicU64,
    pub(crate) ping_answers: AtomicU64,
    pub(crate) probe_acks: AtomicU64,
    /// Units that received their key set (a readable one, on their own `keys` topic).
    pub(crate) key_sets: AtomicU64,
    /// Key subscriptions the broker refused, and key-set messages that did not parse.
    pub(crate) key_problems: AtomicU64,
    pub(crate) connect: Mutex<LatencyRecorder>,
    /// SUBSCRIBE to the key set → the key set received.
    pub(crate) key_set: Mutex<LatencyRecorder>,
    pub(crate) ping: Mutex<LatencyRecorder>,
    pub(crate) probe: Mutex<LatencyRecorder>,
    pub(crate) failures: Mutex<BTreeMap<Failure, u64>>,
    pub(crate) first_failure: Mutex<Option<FirstFailure>>,
    /// The first few reasons the broker closed a held session (or a key-set problem).
    pub(crate) drop_reasons: Mutex<Vec<String>>,
}

/// A poisoned lock still holds valid counters: a unit task that panicked must not hide
/// every other unit's figures.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Tally {
    pub(crate) fn new(started: Instant, max_failures: u64) -> Self {
        Self {
            started,
            max_failures,
            give_up: AtomicBool::new(false),
            open: AtomicU64::new(0),
            opened: Arc::new(AtomicU64::new(0)),
            failed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            probes_open: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            ping_answers: AtomicU64::new(0),
            probe_acks: AtomicU64::new(0),
            key_sets: AtomicU64::new(0),
            key_problems: AtomicU64::new(0),
            connect: Mutex::new(LatencyRecorder::new()),
            key_set: Mutex::new(LatencyRecorder::new()),
            ping: Mutex::new(LatencyRecorder::new()),
            probe: Mutex::new(LatencyRecorder::new()),
            failures: Mutex::new(BTreeMap::new()),
            first_failure: Mutex::new(None),
            drop_reasons: Mutex::new(Vec::new()),
        }
    }

    fn fail(&self, failure: Failure) {
        if self.failed.fetch_add(1, Ordering::Relaxed) + 1 >= self.max_failures {
            self.give_up.store(true, Ordering::Relaxed);
        }
        let connected_before = self.opened.load(Ordering::Relaxed);
        {
            let mut first = lock(&self.first_failure);
            if first.is_none() {
                *first = Some(FirstFailure {
                    failure: failure.clone(),
                    connected_before,
                    after: self.started.elapsed(),
                });
            }
        }
        *lock(&self.failures).entry(failure).or_insert(0) += 1;
    }

    fn dropped(&self, reason: String) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.note(reason);
    }

    /// A key-set problem that does not end the session (a refused subscription, a set that
    /// does not parse): counted, and its reason kept with the drop reasons.
    fn key_problem(&self, reason: String) {
        self.key_problems.fetch_add(1, Ordering::Relaxed);
        self.note(reason);
    }

    fn note(&self, reason: String) {
        let mut reasons = lock(&self.drop_reasons);
        if reasons.len() < 20 {
            reasons.push(reason);
        }
    }

    pub(crate) fn failures(&self) -> BTreeMap<Failure, u64> {
        lock(&self.failures).clone()
    }

    pub(crate) fn first_failure(&self) -> Option<FirstFailure> {
        lock(&self.first_failure).clone()
    }

    pub(crate) fn drop_reasons(&self) -> Vec<String> {
        lock(&self.drop_reasons).clone()
    }
}

/// One unit of the run.
pub(crate) struct UnitPlan {
    pub(crate) source: IpAddr,
    pub(crate) identity: Identity,
    /// Publishes a probe point in the probe phase.
    pub(crate) probe: bool,
}

/// Opens the unit's session, subscribes to its key set, and holds the session until
/// [`Phase::Stop`] (or until the broker drops it). Does not try to open once `max_failures`
/// openings have failed: a run that has hit its limit should not spend minutes timing out
/// the rest.
pub(crate) async fn run_unit(
    plan: UnitPlan,
    dial: Arc<Dial>,
    connect_slots: Arc<Semaphore>,
    tally: Arc<Tally>,
    mut phase: watch::Receiver<Phase>,
) {
    let Some(mut session) = open(&plan, &dial, &connect_slots, &tally, &phase).await else {
        return;
    };
    let mut idle = Idle::new(&plan);
    if let Err(error) = idle.subscribe_keys(&mut session).await {
        tally.dropped(format!("subscribing to the key set: {error}"));
        return;
    }
    let mut keep_alive = tokio::time::interval_at(
        Instant::now() + dial.keep_alive / 2,
        (dial.keep_alive / 2).max(Duration::from_millis(500)),
    );
    keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut seen = *phase.borrow_and_update();
    loop {
        let outcome = tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = *phase.borrow_and_update();
                if now == seen {
                    continue;
                }
                seen = now;
                if now == Phase::Stop {
                    break;
                }
                idle.on_phase(now, &mut session).await
            }
            _ = keep_alive.tick() => {
                idle.pings.push_back((Instant::now(), false));
                session.ping().await.map_err(|error| format!("keep-alive: {error}"))
            }
            packet = session.next_packet() => match packet {
                Ok(packet) => idle.on_packet(packet, &mut session, &tally).await,
                Err(reason) => Err(reason),
            }
        };
        if let Err(reason) = outcome {
            tally.dropped(reason);
            return;
        }
    }
    tally.open.fetch_sub(1, Ordering::Relaxed);
    session.disconnect().await;
}

/// Takes a connect slot and opens the session, counting the outcome; `None` when the unit
/// did not open (skipped or failed).
async fn open(
    plan: &UnitPlan,
    dial: &Dial,
    connect_slots: &Semaphore,
    tally: &Tally,
    phase: &watch::Receiver<Phase>,
) -> Option<Session> {
    let opened = {
        let Ok(_slot) = connect_slots.acquire().await else {
            tally.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        if tally.give_up.load(Ordering::Relaxed) || *phase.borrow() == Phase::Stop {
            tally.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Session::open(plan.source, dial, &plan.identity).await
    };
    match opened {
        Ok((session, opening)) => {
            lock(&tally.connect).record_duration(opening);
            tally.open.fetch_add(1, Ordering::Relaxed);
            tally.opened.fetch_add(1, Ordering::Relaxed);
            if plan.probe {
                tally.probes_open.fetch_add(1, Ordering::Relaxed);
            }
            Some(session)
        }
        Err(failure) => {
            tally.fail(failure);
            None
        }
    }
}

/// What a held session keeps track of between packets.
struct Idle {
    keys_topic: String,
    telemetry_topic: String,
    probe: bool,
    /// PINGREQs in flight, oldest first, with whether each is the round's (PINGRESPs come
    /// back in order, so the front is always the one being answered).
    pings: VecDeque<(Instant, bool)>,
    probe_sent: Option<(u16, Instant)>,
    /// The key subscription's packet id and when it was sent, until the key set arrives.
    awaiting_keys: Option<(u16, Instant)>,
}

impl Idle {
    fn new(plan: &UnitPlan) -> Self {
        Self {
            keys_topic: topics::keys(&plan.identity.device_id),
            telemetry_topic: topics::telemetry(&plan.identity.device_id),
            probe: plan.probe,
            pings: VecDeque::new(),
            probe_sent: None,
            awaiting_keys: None,
        }
    }

    async fn subscribe_keys(&mut self, session: &mut Session) -> std::io::Result<()> {
        let pkid = session.subscribe(&self.keys_topic).await?;
        self.awaiting_keys = Some((pkid, Instant::now()));
        Ok(())
    }

    /// Carries out a command of the run; `Err` (why) when the session failed.
    async fn on_phase(&mut self, phase: Phase, session: &mut Session) -> Result<(), String> {
        let sent = match phase {
            Phase::PingRound => {
                self.pings.push_back((Instant::now(), true));
                session.ping().await
            }
            Phase::Probe if self.probe => session
                .publish(&self.telemetry_topic, probe_payload(), false)
                .await
                .map(|pkid| self.probe_sent = Some((pkid, Instant::now()))),
            Phase::Hold | Phase::Probe | Phase::Stop => Ok(()),
        };
        sent.map_err(|error| format!("sending: {error}"))
    }

    /// Handles one packet from the broker; `Err` (why) when the session must end.
    async fn on_packet(
        &mut self,
        packet: Packet,
        session: &mut Session,
        tally: &Tally,
    ) -> Result<(), String> {
        match packet {
            Packet::PingResp => {
                if let Some((sent, true)) = self.pings.pop_front() {
                    record(&tally.ping, sent);
                    tally.ping_answers.fetch_add(1, Ordering::Relaxed);
                }
            }
            Packet::PubAck(ack) => {
                if let Some((pkid, sent)) = self.probe_sent {
                    if ack.pkid == pkid {
                        record(&tally.probe, sent);
                        tally.probe_acks.fetch_add(1, Ordering::Relaxed);
                        self.probe_sent = None;
                    }
                }
            }
            Packet::SubAck(suback) => self.on_suback(&suback, tally),
            Packet::Publish(publish) => return self.on_publish(publish, session, tally).await,
            other => {
                return Err(format!(
                    "unexpected {} from the broker",
                    packet_name(&other)
                ))
            }
        }
        Ok(())
    }

    fn on_suback(&mut self, suback: &SubAck, tally: &Tally) {
        let ours = self
            .awaiting_keys
            .is_some_and(|(pkid, _)| pkid == suback.pkid);
        let refused = suback
            .return_codes
            .iter()
            .any(|code| matches!(code, SubscribeReasonCode::Failure));
        if ours && refused {
            self.awaiting_keys = None;
            tally.key_problem(format!(
                "the broker refused the subscription to {}",
                self.keys_topic
            ));
        }
    }

    /// Acknowledges a QoS 1 message (else the broker keeps it in flight), and takes the
    /// first key set on the unit's own topic.
    async fn on_publish(
        &mut self,
        publish: Publish,
        session: &mut Session,
        tally: &Tally,
    ) -> Result<(), String> {
        if publish.qos == QoS::AtLeastOnce {
            session
                .puback(publish.pkid)
                .await
                .map_err(|error| format!("acknowledging a message: {error}"))?;
        }
        if publish.topic != self.keys_topic {
            return Ok(());
        }
        let Some((_, subscribed)) = self.awaiting_keys else {
            return Ok(());
        };
        self.awaiting_keys = None;
        match KeySet::parse(&publish.payload) {
            Ok(_) => {
                record(&tally.key_set, subscribed);
                tally.key_sets.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => tally.key_problem(format!("key set on {}: {error}", self.keys_topic)),
        }
        Ok(())
    }
}

fn record(recorder: &Mutex<LatencyRecorder>, sent: Instant) {
    lock(recorder).record_duration(sent.elapsed());
}

/// One realistic point, stamped now.
fn probe_payload() -> Vec<u8> {
    let payload = TelemetryPayload {
        ts: Some(now_ms()),
        lat: Some(59.33),
        lon: Some(18.06),
        speed_kmh: Some(0.0),
        ignition: Some(false),
        ..TelemetryPayload::default()
    }
    .with_tracking(1, now_us());
    serde_json::to_vec(&payload).unwrap_or_default()
}
