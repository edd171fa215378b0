//! The life of one idle unit in the scale run: open its session (at most `connect_slots`
//! openings at a time), then stay connected, keeping the session alive and answering the
//! run's commands (a ping round, a probe point, the clean end) until told to stop.
//!
//! Everything a unit measures goes into the shared [`Tally`], so fifty thousand units cost
//! fifty thousand small tasks and no per-unit results to collect.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::mqttbytes::v4::Packet;
use tokio::sync::{watch, Semaphore};
use tokio::time::{Instant, MissedTickBehavior};

use super::conn::{packet_name, Dial, Failure, Identity, Session};
use crate::stats::LatencyRecorder;
use crate::telemetry::{now_ms, now_us, TelemetryPayload};
use crate::topics;

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
    pub(crate) connect: Mutex<LatencyRecorder>,
    pub(crate) ping: Mutex<LatencyRecorder>,
    pub(crate) probe: Mutex<LatencyRecorder>,
    pub(crate) failures: Mutex<BTreeMap<Failure, u64>>,
    pub(crate) first_failure: Mutex<Option<FirstFailure>>,
    /// The first few reasons the broker closed a held session.
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
            connect: Mutex::new(LatencyRecorder::new()),
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

/// Opens the unit's session and holds it until [`Phase::Stop`] (or until the broker drops
/// it). Does not try to open once `max_failures` openings have failed: a run that has hit its limit should not
/// spend minutes timing out the rest.
pub(crate) async fn run_unit(
    plan: UnitPlan,
    dial: Arc<Dial>,
    connect_slots: Arc<Semaphore>,
    tally: Arc<Tally>,
    mut phase: watch::Receiver<Phase>,
) {
    let opened = {
        let Ok(_slot) = connect_slots.acquire().await else {
            tally.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if tally.give_up.load(Ordering::Relaxed) || *phase.borrow() == Phase::Stop {
            tally.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Session::open(plan.source, &dial, &plan.identity).await
    };
    let mut session = match opened {
        Ok((session, opening)) => {
            lock(&tally.connect).record_us(i64::try_from(opening.as_micros()).unwrap_or(i64::MAX));
            tally.open.fetch_add(1, Ordering::Relaxed);
            tally.opened.fetch_add(1, Ordering::Relaxed);
            if plan.probe {
                tally.probes_open.fetch_add(1, Ordering::Relaxed);
            }
            session
        }
        Err(failure) => {
            tally.fail(failure);
            return;
        }
    };

    // PINGREQs in flight, oldest first, with whether each is the round's (PINGRESPs come
    // back in order, so the front is always the one being answered).
    let mut pings: VecDeque<(Instant, bool)> = VecDeque::new();
    let mut probe_sent: Option<(u16, Instant)> = None;
    let mut keep_alive = tokio::time::interval_at(
        Instant::now() + dial.keep_alive / 2,
        (dial.keep_alive / 2).max(Duration::from_millis(500)),
    );
    keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut seen = *phase.borrow_and_update();
    loop {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = *phase.borrow_and_update();
                if now == seen {
                    continue;
                }
                seen = now;
                let sent = match now {
                    Phase::Hold => Ok(()),
                    Phase::PingRound => {
                        pings.push_back((Instant::now(), true));
                        session.ping().await
                    }
                    Phase::Probe if plan.probe => {
                        let payload = probe_payload();
                        let topic = topics::telemetry(&plan.identity.device_id);
                        session.publish(&topic, payload, false).await.map(|pkid| {
                            probe_sent = Some((pkid, Instant::now()));
                        })
                    }
                    Phase::Probe => Ok(()),
                    Phase::Stop => break,
                };
                if let Err(error) = sent {
                    tally.dropped(format!("sending: {error}"));
                    return;
                }
            }
            _ = keep_alive.tick() => {
                pings.push_back((Instant::now(), false));
                if let Err(error) = session.ping().await {
                    tally.dropped(format!("keep-alive: {error}"));
                    return;
                }
            }
            packet = session.next_packet() => match packet {
                Ok(Packet::PingResp) => {
                    if let Some((sent, true)) = pings.pop_front() {
                        record(&tally.ping, sent);
                        tally.ping_answers.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(Packet::PubAck(ack)) => {
                    if let Some((pkid, sent)) = probe_sent {
                        if ack.pkid == pkid {
                            record(&tally.probe, sent);
                            tally.probe_acks.fetch_add(1, Ordering::Relaxed);
                            probe_sent = None;
                        }
                    }
                }
                // Retained key sets and the like: an idle unit only needs to read them.
                Ok(Packet::Publish(_)) => {}
                Ok(other) => {
                    tally.dropped(format!("unexpected {} from the broker", packet_name(&other)));
                    return;
                }
                Err(reason) => {
                    tally.dropped(reason);
                    return;
                }
            }
        }
    }
    tally.open.fetch_sub(1, Ordering::Relaxed);
    session.disconnect().await;
}

fn record(recorder: &Mutex<LatencyRecorder>, sent: Instant) {
    let micros = i64::try_from(sent.elapsed().as_micros()).unwrap_or(i64::MAX);
    lock(recorder).record_us(micros);
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
