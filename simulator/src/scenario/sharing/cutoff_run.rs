//! The measured frame of the two cut-off runs (`visibility`, `revoke-storm`): the owner's
//! fleet shared with every grantee, the grantees' streams read into the cut-off ledger,
//! units streaming until told to stop, and the listings and ledger judged at the end. The
//! scenarios differ only in how they take the grants back (one at a time, or a storm) and
//! in what they report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::cutoff::{plan_removals, CutoffLedger, CutoffTally, PlannedRemoval};
use super::setup::{count_live_grants, share_fleet, Grantee};
use super::streams::{open_streams, watch_stream, StreamReaders};
use crate::api::{ApiClient, AssetId};
use crate::scenario::fleet::{connect_fleet, disconnect_all, Fleet};
use crate::scenario::publish::{join_units, spawn_units, Drive, PublishPlan, UnitOutcome};
use crate::scenario::runner::Run;
use crate::scenario::timeline::{Sampler, Timeline};
use crate::scenario::{ErrorLog, ScenarioError, Target};
use crate::stats::LatencyRecorder;
use crate::telemetry::SENT_US_SENSOR;
use crate::unit::SimUnit;

/// How long the streams stay open after the units stopped, for points still on the way.
const STREAM_DRAIN: Duration = Duration::from_secs(1);
const DELIVERY_POLL: Duration = Duration::from_millis(20);

/// The longest the units of a cut-off run stream; it caps each unit's points, so a run whose
/// removals take longer than this reports it instead of streaming forever.
pub const MAX_STREAMING: Duration = Duration::from_secs(3600);
/// Bounds memory (one flag per point is kept until the end) over all units.
pub const MAX_TOTAL_POINTS: u64 = 50_000_000;

/// The most points one of `units` units streaming at `rate` may send: [`MAX_STREAMING`] at
/// the rate, less if the run's total would pass [`MAX_TOTAL_POINTS`]. Units normally stop
/// long before.
pub(crate) fn points_cap_per_unit(rate: f64, units: usize) -> u64 {
    let by_time = (rate * MAX_STREAMING.as_secs_f64()).ceil() as u64;
    by_time.min(MAX_TOTAL_POINTS / units.max(1) as u64)
}

/// The cut-off ledger shared by the stream readers and the removals; a poisoned lock
/// still holds a valid ledger.
pub(crate) fn lock(ledger: &Mutex<CutoffLedger>) -> MutexGuard<'_, CutoffLedger> {
    ledger
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What setup made for a cut-off run.
pub(crate) struct CutoffSetup {
    pub(crate) fleet: Fleet,
    pub(crate) owner_admin: ApiClient,
    pub(crate) grantees: Vec<Grantee>,
    /// Every asset of the fleet, by unit index.
    pub(crate) assets: Vec<AssetId>,
    /// The grants made, to be taken back.
    pub(crate) granted: Vec<PlannedRemoval>,
    pub(crate) ledger: Arc<Mutex<CutoffLedger>>,
    /// Points delivered on the grantees' streams so far.
    pub(crate) delivered: Arc<AtomicU64>,
    /// Send → grantee stream, every delivery with a readable `sent_us`.
    pub(crate) delivery_latency: Arc<Mutex<LatencyRecorder>>,
    pub(crate) streams: StreamReaders,
    pub(crate) units: Vec<(usize, Arc<SimUnit>)>,
}

/// Shares the fleet, opens every grantee's stream (before any unit publishes, so every
/// point has its subscribers) and connects the units.
pub(crate) async fn setup_cutoff(
    target: &Target,
    run: &Run,
    units: usize,
    grantees: usize,
) -> Result<CutoffSetup, ScenarioError> {
    let parallelism = run.options.parallelism;
    let shared = share_fleet(target, &run.id, units, grantees, parallelism, &run.errors).await?;
    let grantee_ids = shared
        .grantees
        .iter()
        .map(|grantee| grantee.account.id.clone());
    let ledger = Arc::new(Mutex::new(CutoffLedger::new(
        grantee_ids.collect(),
        &shared.assets,
    )));
    let delivered = Arc::new(AtomicU64::new(0));
    let delivery_latency = Arc::new(Mutex::new(LatencyRecorder::new()));
    let accounts: Vec<&Grantee> = shared.grantees.iter().collect();
    let opened = open_streams(&accounts, parallelism).await?;
    let (stop, stop_rx) = watch::channel(false);
    let readers = opened
        .into_iter()
        .enumerate()
        .map(|(index, stream)| {
            let (ledger, delivered) = (ledger.clone(), delivered.clone());
            let latency = delivery_latency.clone();
            tokio::spawn(watch_stream(
                accounts[index].account.id.clone(),
                stream,
                stop_rx.clone(),
                run.errors.clone(),
                move |arrival| {
                    let asset_id = &arrival.point.asset_id;
                    lock(&ledger).observe(index, asset_id, arrival.sent_us, arrival.received_us);
                    delivered.fetch_add(1, Ordering::Relaxed);
                    if let Some(sent_us) = arrival.sent_us {
                        let mut latency = latency.lock().unwrap_or_else(|p| p.into_inner());
                        latency.record_between(sent_us, arrival.received_us);
                    }
                },
            ))
        })
        .collect();
    let streams = StreamReaders { stop, readers };
    let units = match connect_fleet(&shared.fleet, target, parallelism, &run.errors).await {
        Ok(units) => units,
        Err(error) => {
            streams.stop.send_replace(true);
            return Err(error);
        }
    };
    Ok(CutoffSetup {
        fleet: shared.fleet,
        owner_admin: shared.owner_admin,
        grantees: shared.grantees,
        assets: shared.assets,
        granted: shared.granted,
        ledger,
        delivered,
        delivery_latency,
        streams,
        units,
    })
}

/// The units streaming until [`Streaming::stop`], with the run's timeline counting
/// whatever `counter` counts.
pub(crate) struct Streaming {
    pub(crate) plan: PublishPlan,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<UnitOutcome>>,
    sampler: Option<Sampler>,
}

impl CutoffSetup {
    /// Starts every unit at `rate` points/s, up to `cap` points each, and the timeline.
    pub(crate) fn start_streaming(
        &self,
        run: &Run,
        rate: f64,
        cap: u64,
        ack_timeout: Duration,
        counter: Arc<AtomicU64>,
    ) -> Streaming {
        let plan = PublishPlan::new(cap, rate, self.units.len(), ack_timeout);
        let http_base = Some(self.owner_admin.base_url().as_str().to_owned());
        let sampler = Sampler::start(counter, run.options.gateway_pid, http_base, plan.start);
        let (stop, stop_rx) = watch::channel(false);
        let drive = Drive {
            stop: Some(stop_rx),
            ..Drive::default()
        };
        let tasks = spawn_units(&self.units, plan, drive, &run.errors);
        Streaming {
            plan,
            stop,
            tasks,
            sampler: Some(sampler),
        }
    }

    /// Waits until every grantee has received a point of every streaming asset, or the
    /// timeout passes (then the pairs still dark are an error: a cut-off of a delivery that
    /// never started proves nothing).
    pub(crate) async fn wait_for_first_deliveries(&self, timeout: Duration, errors: &ErrorLog) {
        let assets: Vec<AssetId> = self
            .units
            .iter()
            .map(|(machine, _)| self.fleet.machines[*machine].asset_id.clone())
            .collect();
        let deadline = Instant::now() + timeout;
        loop {
            let (undelivered, example) = lock(&self.ledger).undelivered(&assets);
            if undelivered == 0 {
                return;
            }
            if Instant::now() >= deadline {
                if let Some((grantee, asset)) = example {
                    errors.push(format!(
                        "{undelivered} granted pairs saw no point within {timeout:?} \
                         (e.g. {grantee} never received {asset})"
                    ));
                }
                return;
            }
            tokio::time::sleep(DELIVERY_POLL).await;
        }
    }

    /// The run's grants the gateway lists as active; `expected` of them, or an error of
    /// the run saying `when`.
    pub(crate) async fn grants_live(&self, run: &Run, expected: u64, when: &str) -> u64 {
        let live = count_live_grants(
            &self.owner_admin,
            &self.grantees,
            &self.assets,
            run.options.parallelism,
            &run.errors,
        )
        .await;
        if live != expected && expected == 0 {
            run.errors
                .push(format!("{live} grants still listed as active {when}"));
        } else if live != expected {
            run.errors.push(format!(
                "{live} of {expected} grants listed as active {when}"
            ));
        }
        live
    }

    /// Lets the units stream for `settle`, stops them, drains the streams and closes them,
    /// and ends the timeline. The units' outcomes are by machine index, lined up with
    /// `assets`; a unit that reached its cap before the run ended is an error.
    pub(crate) async fn stop_streaming(
        &mut self,
        run: &Run,
        mut streaming: Streaming,
        settle: Duration,
    ) -> StreamedLoad {
        tokio::time::sleep(settle).await;
        streaming.stop.send_replace(true);
        let outcomes = join_units(std::mem::take(&mut streaming.tasks), &run.errors).await;
        let mut load = StreamedLoad {
            acknowledged: vec![Vec::new(); self.assets.len()],
            points_sent: 0,
            timeline: Timeline::default(),
        };
        let cap = streaming.plan.points_per_unit;
        let capped = outcomes
            .iter()
            .flatten()
            .filter(|outcome| outcome.sent >= cap);
        let capped = capped.count();
        if capped > 0 {
            run.errors.push(format!(
                "{capped} units reached their cap of {cap} points before the run ended, so \
                 later removals were checked against fewer points"
            ));
        }
        for (outcome, (machine, _)) in outcomes.into_iter().zip(&self.units) {
            if let Some(outcome) = outcome {
                load.points_sent += outcome.sent;
                load.acknowledged[*machine] = outcome.acknowledged;
            }
        }
        tokio::time::sleep(STREAM_DRAIN.min(settle)).await;
        self.streams.close(&run.errors).await;
        if let Some(sampler) = streaming.sampler.take() {
            load.timeline = sampler.finish(&run.errors).await;
        }
        load
    }

    /// Send → grantee stream over every delivery so far.
    pub(crate) fn delivery_latency_percentiles(&self) -> crate::stats::Percentiles {
        self.delivery_latency
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .percentiles()
    }

    /// Disconnects the units and judges the ledger: points of assets never granted and
    /// points without a readable send time are errors of the run.
    pub(crate) async fn finish(self, run: &Run) -> (Fleet, CutoffTally) {
        disconnect_all(self.units, run.options.parallelism, &run.errors).await;
        // Every reader is done; taking the ledger out (rather than unwrapping the Arc)
        // also works if one of them was lost instead of joined.
        let empty = CutoffLedger::new(Vec::new(), &[]);
        let tally = std::mem::replace(&mut *lock(&self.ledger), empty).finish();
        if tally.foreign > 0 {
            run.errors.push(format!(
                "grantees received {} points of assets never granted to them",
                tally.foreign
            ));
        }
        if tally.untracked > 0 {
            run.errors.push(format!(
                "{} delivered points carried no readable sensors.{SENT_US_SENSOR}",
                tally.untracked
            ));
        }
        (self.fleet, tally)
    }
}

/// How a cut-off run streams before it takes the grants back.
pub(crate) struct StreamSpec {
    pub(crate) rate: f64,
    /// The most points a unit sends.
    pub(crate) cap: u64,
    /// For the first deliveries and the last acknowledgements.
    pub(crate) delivery_timeout: Duration,
    /// What the timeline counts.
    pub(crate) counter: Arc<AtomicU64>,
    /// The removal order's seed; random when `None`.
    pub(crate) seed: Option<u64>,
    /// Each removal waits a random time up to this first.
    pub(crate) max_pause: Duration,
}

/// A cut-off run's load: the units streaming around the removals `R`.
pub(crate) struct CutoffLoad<R> {
    pub(crate) seed: u64,
    streaming: Option<Streaming>,
    pub(crate) streamed: StreamedLoad,
    pub(crate) grants_live_at_start: u64,
    pub(crate) removals: R,
}

impl CutoffSetup {
    /// Starts the units, waits until every grantee gets every asset, checks that every
    /// grant is listed, then takes the grants back with `remove` (in a seeded random
    /// order) while the units keep streaming.
    pub(crate) async fn stream_and_remove<R>(
        &mut self,
        run: &Run,
        spec: StreamSpec,
        remove: impl AsyncFnOnce(&CutoffSetup, Vec<PlannedRemoval>) -> R,
    ) -> CutoffLoad<R> {
        let seed = spec.seed.unwrap_or_else(rand::random);
        let timeout = spec.delivery_timeout;
        let streaming = self.start_streaming(run, spec.rate, spec.cap, timeout, spec.counter);
        self.wait_for_first_deliveries(timeout, &run.errors).await;
        let expected = (self.grantees.len() * self.assets.len()) as u64;
        let grants_live_at_start = self.grants_live(run, expected, "before the removals").await;
        let granted = std::mem::take(&mut self.granted);
        let removals = remove(&*self, plan_removals(granted, seed, spec.max_pause)).await;
        CutoffLoad {
            seed,
            streaming: Some(streaming),
            streamed: StreamedLoad::empty(),
            grants_live_at_start,
            removals,
        }
    }

    /// The units keep streaming for `settle` after the removals, then stop; the streams
    /// drain and close.
    pub(crate) async fn settle<R>(
        &mut self,
        run: &Run,
        load: &mut CutoffLoad<R>,
        settle: Duration,
    ) {
        if let Some(streaming) = load.streaming.take() {
            load.streamed = self.stop_streaming(run, streaming, settle).await;
        }
    }
}

/// What the streaming units did, by machine index, and the run's timeline.
pub(crate) struct StreamedLoad {
    pub(crate) acknowledged: Vec<Vec<bool>>,
    pub(crate) points_sent: u64,
    pub(crate) timeline: Timeline,
}

impl StreamedLoad {
    /// Nothing streamed (a run that never got to settle).
    pub(crate) fn empty() -> Self {
        Self {
            acknowledged: Vec::new(),
            points_sent: 0,
            timeline: Timeline::default(),
        }
    }

    pub(crate) fn points_acked(&self) -> u64 {
        self.acknowledged
            .iter()
            .map(|acked| acked.iter().filter(|acked| **acked).count() as u64)
            .sum()
    }
}
