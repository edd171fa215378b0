//! The publishing half of every scenario whose units stream: one task per unit sends its
//! points on a fixed schedule and records which of them the broker acknowledged.
//!
//! Points are not sent one-at-a-time-and-wait: a unit keeps sending on schedule while
//! earlier points are still in flight (bounded by rumqttc's in-flight window and request
//! channel, which push back on the schedule when the broker is slow). If the schedule falls
//! behind, missed ticks are sent in a burst, so the number of points is always exactly the
//! planned one and the achieved rate shows up in the report instead. A run that decides its
//! length as it goes gives a cap as the plan and a stop signal that ends sending early.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use indicatif::ProgressBar;
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::ErrorLog;
use crate::stats::{LatencyRecorder, Percentiles};
use crate::telemetry::{now_us, TrackGenerator};
use crate::unit::{AckWaiter, SimUnit};

/// A point a unit sent, as the storage probe needs to find it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SentPoint {
    pub(crate) seq: u64,
    pub(crate) ts_ms: u64,
    pub(crate) sent_us: u64,
}

/// Where the storage probe asks a unit "tell me about your next point". Checked by the unit
/// just after it hands a point to MQTT, so the probe starts polling history right then.
pub(crate) type SampleSlot = Arc<Mutex<Option<oneshot::Sender<SentPoint>>>>;

/// A new shared publish→ack recorder for `UnitJob::ack_latency`.
pub(crate) fn ack_latency_recorder() -> Arc<Mutex<LatencyRecorder>> {
    Arc::new(Mutex::new(LatencyRecorder::new()))
}

/// The percentiles a shared recorder holds so far.
pub(crate) fn percentiles_of(recorder: &Mutex<LatencyRecorder>) -> Percentiles {
    lock(recorder).percentiles()
}

/// A poisoned recorder still holds valid samples: one unit task that panicked must not
/// hide every other unit's.
fn lock(recorder: &Mutex<LatencyRecorder>) -> std::sync::MutexGuard<'_, LatencyRecorder> {
    recorder
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn take_slot(slot: &SampleSlot) -> Option<oneshot::Sender<SentPoint>> {
    slot.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take()
}

pub(crate) fn fill_slot(slot: &SampleSlot, sender: oneshot::Sender<SentPoint>) {
    *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(sender);
}

/// The schedule every unit follows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublishPlan {
    /// The most points a unit sends; it sends fewer only when told to stop (see
    /// `UnitJob::stop`) or when its connection fails.
    pub(crate) points_per_unit: u64,
    pub(crate) period: Duration,
    /// When the first unit sends its first point; the others are spread over one period
    /// after it, so N units at 1 point/s do not all fire in the same millisecond.
    pub(crate) start: Instant,
    pub(crate) units: usize,
    /// How long a unit waits for its last acknowledgements after sending its last point.
    pub(crate) ack_timeout: Duration,
}

/// Gives every unit task time to be scheduled before the first tick.
const START_DELAY: Duration = Duration::from_millis(100);

impl PublishPlan {
    /// `points_per_unit` points at `rate` points/s from each of `units` units, the first
    /// [`START_DELAY`] from now; each unit waits `ack_timeout` for its last acknowledgements.
    pub(crate) fn new(
        points_per_unit: u64,
        rate: f64,
        units: usize,
        ack_timeout: Duration,
    ) -> Self {
        Self {
            points_per_unit,
            period: Duration::from_secs_f64(1.0 / rate),
            start: Instant::now() + START_DELAY,
            units,
            ack_timeout,
        }
    }
}

/// Everything one unit's task needs; owned, because each unit runs in its own task.
pub(crate) struct UnitJob {
    pub(crate) unit: Arc<SimUnit>,
    /// Index among connected units: decides the start offset.
    pub(crate) position: usize,
    /// Seeds the unit's track, so runs are repeatable.
    pub(crate) seed: u64,
    pub(crate) plan: PublishPlan,
    pub(crate) sample_slot: SampleSlot,
    pub(crate) progress: ProgressBar,
    pub(crate) errors: Arc<ErrorLog>,
    /// For runs whose length is decided while they run (the visibility scenario streams until
    /// its removals are done): flipping it to `true` ends sending early. `None` sends the
    /// whole plan.
    pub(crate) stop: Option<watch::Receiver<bool>>,
    /// Counts acknowledgements across all units for a per-second throughput series;
    /// `None` when the run keeps no such series.
    pub(crate) acked: Option<Arc<AtomicU64>>,
    /// Collects every acknowledged point's publish→ack round trip (see
    /// `AckWaiter::wait_round_trip`) across all units: one histogram per run, so memory
    /// stays bounded whatever the number of units and points. `None`: not measured.
    pub(crate) ack_latency: Option<Arc<Mutex<LatencyRecorder>>>,
}

/// What one unit did: `acknowledged[seq]` is true for each point the broker acknowledged;
/// it has one flag per point sent.
#[derive(Debug)]
pub(crate) struct UnitOutcome {
    pub(crate) position: usize,
    pub(crate) sent: u64,
    pub(crate) acknowledged: Vec<bool>,
}

/// What varies between the runs that drive their units with [`spawn_units`]; the default
/// sends the whole plan and measures nothing beyond what each unit acknowledged.
#[derive(Default)]
pub(crate) struct Drive {
    /// One per unit, in unit order, for the storage probe; `None`: no probe.
    pub(crate) sample_slots: Option<Vec<SampleSlot>>,
    pub(crate) progress: Option<ProgressBar>,
    pub(crate) stop: Option<watch::Receiver<bool>>,
    pub(crate) acked: Option<Arc<AtomicU64>>,
    pub(crate) ack_latency: Option<Arc<Mutex<LatencyRecorder>>>,
}

/// Starts one task per unit (`(machine, unit)`, the machine seeding its track) sending
/// on `plan`; [`join_units`] collects them.
pub(crate) fn spawn_units(
    units: &[(usize, Arc<SimUnit>)],
    plan: PublishPlan,
    drive: Drive,
    errors: &Arc<ErrorLog>,
) -> Vec<tokio::task::JoinHandle<UnitOutcome>> {
    let progress = drive.progress.unwrap_or_else(ProgressBar::hidden);
    units
        .iter()
        .enumerate()
        .map(|(position, (machine, unit))| {
            let sample_slot = match &drive.sample_slots {
                Some(slots) => slots[position].clone(),
                None => Arc::new(Mutex::new(None)),
            };
            tokio::spawn(drive_unit(UnitJob {
                unit: unit.clone(),
                position,
                seed: *machine as u64,
                plan,
                sample_slot,
                progress: progress.clone(),
                errors: errors.clone(),
                stop: drive.stop.clone(),
                acked: drive.acked.clone(),
                ack_latency: drive.ack_latency.clone(),
            }))
        })
        .collect()
}

/// Waits for every unit task, in unit order; a task that failed is an error of the run
/// and leaves a gap (`None`) in its unit's place.
pub(crate) async fn join_units(
    tasks: Vec<tokio::task::JoinHandle<UnitOutcome>>,
    errors: &ErrorLog,
) -> Vec<Option<UnitOutcome>> {
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(match task.await {
            Ok(outcome) => Some(outcome),
            Err(error) => {
                errors.push(format!("a unit task failed: {error}"));
                None
            }
        });
    }
    outcomes
}

/// Points acknowledged over all `outcomes`.
pub(crate) fn acked_total<'a>(outcomes: impl IntoIterator<Item = &'a UnitOutcome>) -> u64 {
    outcomes
        .into_iter()
        .map(|outcome| outcome.acknowledged.iter().filter(|acked| **acked).count() as u64)
        .sum()
}

/// Sends the unit's points on schedule and collects acknowledgements until every point is
/// acknowledged, the connection fails, or `ack_timeout` passes after the last send.
pub(crate) async fn drive_unit(mut job: UnitJob) -> UnitOutcome {
    let (unit, plan, errors) = (job.unit.clone(), job.plan, job.errors.clone());
    let mut stop = job.stop.take();
    let count = plan.points_per_unit;
    // Grown as points go out, not sized from the plan: a stoppable run plans a generous cap.
    let mut acknowledged = Vec::new();
    let offset = plan
        .period
        .mul_f64(job.position as f64 / plan.units.max(1) as f64);
    let mut ticker = tokio::time::interval_at(plan.start + offset, plan.period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut generator = TrackGenerator::new(job.seed);
    let mut pending = FuturesUnordered::new();
    let mut next_seq = 0u64;
    let mut sent = 0u64;
    let mut stopped = false;
    let mut stop_requested = false;
    let mut ack_error_reported = false;
    // Armed once sending is over; until then it sleeps "forever" and its branch is off.
    let ack_deadline = tokio::time::sleep(Duration::from_secs(86_400 * 365));
    tokio::pin!(ack_deadline);
    let mut deadline_armed = false;

    loop {
        let sending = next_seq < count && !stopped && !stop_requested;
        if !sending && pending.is_empty() {
            break;
        }
        if !sending && !deadline_armed {
            ack_deadline
                .as_mut()
                .reset(Instant::now() + plan.ack_timeout);
            deadline_armed = true;
        }
        tokio::select! {
            _ = ticker.tick(), if sending => {
                let seq = next_seq;
                next_seq += 1;
                match job.send_next(&mut generator, seq).await {
                    Some(waiter) => {
                        sent += 1;
                        acknowledged.push(false);
                        pending.push(async move { (seq, waiter.wait_round_trip().await) });
                    }
                    None => stopped = true,
                }
            }
            Some((seq, outcome)) = pending.next(), if !pending.is_empty() => match outcome {
                Ok(round_trip) => job.mark_acked(&mut acknowledged, seq, round_trip),
                Err(error) => {
                    if !ack_error_reported {
                        ack_error_reported = true;
                        errors.push(format!(
                            "unit {}: point {seq} not acknowledged: {error}",
                            unit.client_id()
                        ));
                    }
                }
            },
            () = stop_signal(&mut stop), if sending => stop_requested = true,
            _ = &mut ack_deadline, if deadline_armed => {
                errors.push(format!(
                    "unit {}: {} points still unacknowledged {:?} after its last send",
                    unit.client_id(),
                    pending.len(),
                    plan.ack_timeout
                ));
                break;
            }
        }
    }
    UnitOutcome {
        position: job.position,
        sent,
        acknowledged,
    }
}

impl UnitJob {
    /// Sends point `seq` now and hands it to the storage probe if it asked; `None` (the
    /// failure logged) when the unit's connection can take no more, which ends its sending.
    async fn send_next(&self, generator: &mut TrackGenerator, seq: u64) -> Option<AckWaiter> {
        let sent_us = now_us();
        let payload = generator
            .next_point(sent_us / 1000)
            .with_tracking(seq, sent_us);
        let ts_ms = payload.ts.unwrap_or_default();
        match self.unit.send_point(&payload).await {
            Ok(waiter) => {
                if let Some(probe) = take_slot(&self.sample_slot) {
                    let _ = probe.send(SentPoint {
                        seq,
                        ts_ms,
                        sent_us,
                    });
                }
                Some(waiter)
            }
            Err(error) => {
                self.errors.push(format!(
                    "unit {}: stopped at point {seq} of {}: {error}",
                    self.unit.client_id(),
                    self.plan.points_per_unit
                ));
                None
            }
        }
    }

    /// Marks point `seq` acknowledged and counts it wherever the run counts: progress,
    /// the per-second series, the publish→ack histogram.
    fn mark_acked(&self, acknowledged: &mut [bool], seq: u64, round_trip: Option<Duration>) {
        if let Some(flag) = usize::try_from(seq)
            .ok()
            .and_then(|index| acknowledged.get_mut(index))
        {
            *flag = true;
        }
        self.progress.inc(1);
        if let Some(counter) = &self.acked {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if let (Some(recorder), Some(round_trip)) = (&self.ack_latency, round_trip) {
            lock(recorder).record_duration(round_trip);
        }
    }
}

/// Resolves once `stop` holds `true`; never, when there is no stop signal or its sender is
/// gone without asking (then the plan runs to its end).
async fn stop_signal(stop: &mut Option<watch::Receiver<bool>>) {
    if let Some(receiver) = stop {
        if receiver.wait_for(|stop| *stop).await.is_ok() {
            return;
        }
    }
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_signal_waits_for_true_and_ignores_a_dropped_sender() {
        let (sender, receiver) = watch::channel(false);
        let mut stop = Some(receiver);
        let waiting = tokio::time::timeout(Duration::from_millis(20), stop_signal(&mut stop));
        assert!(waiting.await.is_err(), "false must not stop");
        sender.send_replace(true);
        tokio::time::timeout(Duration::from_secs(1), stop_signal(&mut stop))
            .await
            .expect("true stops");

        let (sender, receiver) = watch::channel(false);
        drop(sender);
        let mut orphaned = Some(receiver);
        let waiting = tokio::time::timeout(Duration::from_millis(20), stop_signal(&mut orphaned));
        assert!(waiting.await.is_err(), "a dropped sender is no stop");
        let mut absent = None;
        let waiting = tokio::time::timeout(Duration::from_millis(20), stop_signal(&mut absent));
        assert!(waiting.await.is_err(), "no signal never stops");
    }
}
