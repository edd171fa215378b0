//! The store writer: the one owner of redb write transactions.
//!
//! redb has one writer at a time and `begin_write` blocks, so no HTTP worker or actor ever
//! calls it. Everything that writes sends a job to this thread:
//! - telemetry points and device status are group-committed: the first point of a batch
//!   opens a window of `commit_window`; when it closes (or the batch is full) one durable
//!   transaction writes them all. Each point may carry a [`Completion`]: it hears
//!   [`Outcome::Accepted`] only after that commit (the unit's PUBACK waits for it), or
//!   [`Outcome::NotStored`] if the commit failed. So a hard crash loses no acknowledged point.
//! - the queue to this thread is bounded by its callers, not by the channel: every point
//!   holds one of the transport's ingest permits until its completion fires, and control
//!   operations are awaited by their caller.
//! - control-plane operations run each in their own durable transaction, between telemetry
//!   batches, and their caller gets the result only after the commit.
//! - a disk failure (disk full, an I/O error) does not stop it: redb refuses every call
//!   after one until the database is reopened, so the writer marks the store unavailable
//!   (what `/healthz` reports), reopens it in place with backoff ([`FIRST_RETRY`] doubling
//!   to [`LAST_RETRY`]), and is healthy again once a write succeeds. Meanwhile telemetry
//!   waits in the batch, unacknowledged (the units' ingest permits stay held, so the
//!   transport stops reading their sockets), and is committed after the reopen; control
//!   operations are refused with [`StoreError::Unavailable`]. Nothing acknowledged is lost
//!   and nothing refused was changed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use storage::arrivals::Arrived;
use storage::model::DeviceStatus;
use storage::redb::WriteTransaction;
use storage::store::Health;
use storage::telemetry::Point;
use storage::time::{Clock, SystemClock};
use storage::{DeviceId, OpError, Store, StoreError};
use tokio::sync::oneshot;

use crate::arrival::Stamp;
use crate::metrics::Metrics;
use crate::{Completion, Outcome};

/// A batch this large is committed without waiting for the window to close.
pub const MAX_BATCH_POINTS: usize = 20_000;

/// The first wait before reopening a failed store; it doubles per failed attempt.
pub const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest wait between two attempts to reopen a failed store.
pub const LAST_RETRY: Duration = Duration::from_secs(5);

/// A control operation: given its transaction (or why there is none), it answers its
/// caller, and tells the writer `Err(detail)` when the store itself failed (an I/O error),
/// which the writer then recovers from.
type ControlJob =
    Box<dyn FnOnce(Result<WriteTransaction, StoreError>) -> Result<(), String> + Send>;

enum Job {
    Point {
        asset_key: u64,
        point: Arc<Point>,
        arrival: Stamp,
        /// The mirror assets whose views of the point went out live, in id order: the
        /// `i`-th has the id `arrival.id + 1 + i` (design 5.4). Empty for most points.
        mirrors: Vec<u64>,
        done: Completion,
    },
    Access {
        asset_key: u64,
        seq: u64,
        event: storage::access::AccessEvent,
        arrival: Stamp,
        done: Completion,
    },
    Status {
        device: DeviceId,
        status: DeviceStatus,
    },
    Stamp(storage::stamps::Given),
    Control(ControlJob),
    Flush(oneshot::Sender<()>),
    Shutdown,
}

/// A cheap, cloneable way to reach the writer thread from any thread.
#[derive(Clone, Debug)]
pub struct WriterHandle {
    jobs: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
    epochs: Arc<Epochs>,
    /// Read for its health only: a control operation is refused at once while the writer
    /// is reopening a failed store, instead of queueing behind the recovery.
    store: Store,
}

/// Control-plane commits, counted, and how far the live streams were checked against them
/// (see `Directory::guard_streams`): a change that ends someone's access answers only
/// after their open streams were checked again.
#[derive(Debug)]
struct Epochs {
    committed: tokio::sync::watch::Sender<u64>,
    settled: tokio::sync::watch::Sender<u64>,
    /// Set once a guard runs; without one (store-only tests) nobody waits for it.
    guarded: AtomicBool,
}

/// How long a control operation waits for the streams to be checked before answering
/// anyway (the check itself is a read per open stream; this only bounds a stuck actor).
const SETTLE_LIMIT: Duration = Duration::from_secs(5);

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl WriterHandle {
    fn send(&self, job: Job) -> bool {
        self.metrics.store_queue_depth.inc();
        let sent = self.jobs.send(job).is_ok();
        if !sent {
            self.metrics.store_queue_depth.dec();
        }
        sent
    }

    /// Queues a point of asset `asset_key` for the next group commit, with its entry in
    /// the arrival index (`arrival`, one more insert in the same commit); `done` hears the
    /// outcome after the commit. Returns false once the writer has stopped (then `done` is
    /// dropped: not stored).
    pub fn point(
        &self,
        asset_key: u64,
        point: Arc<Point>,
        (arrival, mirrors): (Stamp, Vec<u64>),
        done: Completion,
    ) -> bool {
        self.send(Job::Point {
            asset_key,
            point,
            arrival,
            mirrors,
            done,
        })
    }

    /// Queues an access event for the next group commit; `arrival` and `done` as for
    /// [`Self::point`].
    pub fn access_event(
        &self,
        asset_key: u64,
        seq: u64,
        event: storage::access::AccessEvent,
        arrival: Stamp,
        done: Completion,
    ) -> bool {
        self.send(Job::Access {
            asset_key,
            seq,
            event,
            arrival,
            done,
        })
    }

    /// Queues the stamp given to an unstamped QoS 1/2 point (see [`storage::stamps`]);
    /// sent before that point's job, so it commits with it or before it.
    pub fn stamp(&self, given: storage::stamps::Given) -> bool {
        self.send(Job::Stamp(given))
    }

    /// Queues a device status; only the newest per device is written in a batch.
    pub fn status(&self, device: DeviceId, status: DeviceStatus) -> bool {
        self.send(Job::Status { device, status })
    }

    /// Runs `op` in its own write transaction and commits it durably if it succeeds. The
    /// answer arrives after the commit, so a caller that answers HTTP after this is durable.
    pub async fn execute<R, F>(&self, op: F) -> Result<R, OpError>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<R, OpError> + Send + 'static,
    {
        self.execute_or_dry(false, op).await
    }

    /// Runs `op` exactly as [`WriterHandle::execute`] would, then aborts: a dry run that
    /// answers what would change, checked by the same code, and changes nothing.
    pub async fn execute_dry<R, F>(&self, op: F) -> Result<R, OpError>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<R, OpError> + Send + 'static,
    {
        self.execute_or_dry(true, op).await
    }

    /// Either of the above, as the caller's `dry_run` flag says. One code path for both, so
    /// a dry run cannot check anything differently from the real change.
    ///
    /// Errors: `op`'s own refusal; [`StoreError::Unavailable`] while the writer is
    /// reopening a failed store (not run, nothing changed); the store's I/O failure in this
    /// very transaction, which starts that recovery; [`StoreError::WriterGone`] after
    /// shutdown.
    pub async fn execute_or_dry<R, F>(&self, dry_run: bool, op: F) -> Result<R, OpError>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<R, OpError> + Send + 'static,
    {
        let epochs = self.epochs.clone();
        let result = self
            .control(move |tx| run_control(tx, dry_run, op, &epochs))
            .await;
        if result.is_ok() && !dry_run {
            self.settle().await;
        }
        result
    }

    /// Runs `work` on the writer thread with no write transaction open (the one the writer
    /// began for it is aborted first), between telemetry batches: maintenance that needs
    /// the database to itself, such as compaction. Telemetry waits meanwhile. Errors as
    /// [`WriterHandle::execute`]; an I/O failure of `work` starts the recovery.
    pub async fn exclusive<R, F>(&self, work: F) -> Result<R, OpError>
    where
        R: Send + 'static,
        F: FnOnce() -> Result<R, OpError> + Send + 'static,
    {
        self.control(move |tx| {
            let _ = tx.abort();
            work()
        })
        .await
    }

    /// Hands `job` the writer thread's next write transaction and answers what it returned:
    /// refused at once while the store is unavailable, [`StoreError::WriterGone`] after
    /// shutdown; an I/O failure in `job` starts the recovery. What [`Self::execute_or_dry`]
    /// and [`Self::exclusive`] share.
    async fn control<R, F>(&self, job: F) -> Result<R, OpError>
    where
        R: Send + 'static,
        F: FnOnce(WriteTransaction) -> Result<R, OpError> + Send + 'static,
    {
        if let Health::Unavailable { detail, .. } = self.store.health() {
            return Err(StoreError::Unavailable(detail).into());
        }
        let (reply, answer) = oneshot::channel();
        let job: ControlJob = Box::new(move |tx| {
            let result = tx.map_err(OpError::Store).and_then(job);
            let failure = match &result {
                Err(err) if err.is_io_failure() => Err(err.to_string()),
                _ => Ok(()),
            };
            let _ = reply.send(result);
            failure
        });
        if !self.send(Job::Control(job)) {
            return Err(StoreError::WriterGone.into());
        }
        answer.await.unwrap_or(Err(StoreError::WriterGone.into()))
    }

    /// Waits until the live streams were checked against every commit made so far, so a
    /// change that ended someone's access answers after their streams ended. The check
    /// runs in the guard's own task: a caller that goes away does not stop it.
    pub async fn settle(&self) {
        if !self.epochs.guarded.load(Ordering::Acquire) {
            return;
        }
        let target = *self.epochs.committed.borrow();
        let mut settled = self.epochs.settled.subscribe();
        let checked = settled.wait_for(|epoch| *epoch >= target);
        if tokio::time::timeout(SETTLE_LIMIT, checked).await.is_err() {
            tracing::warn!(target, "live streams not checked within 5 s of a change");
        }
    }

    /// For the stream guard: the count of control commits, as it grows.
    pub(crate) fn watch_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.epochs.guarded.store(true, Ordering::Release);
        self.epochs.committed.subscribe()
    }

    /// For the stream guard: streams were checked against commits up to `epoch`.
    pub(crate) fn mark_settled(&self, epoch: u64) {
        self.epochs
            .settled
            .send_modify(|settled| *settled = (*settled).max(epoch));
    }

    /// Resolves once everything queued before it is committed.
    pub async fn flush(&self) {
        let (reply, done) = oneshot::channel();
        if self.send(Job::Flush(reply)) {
            let _ = done.await;
        }
    }
}

/// Runs a control operation in `tx`, then commits it (or aborts a dry run or a refusal).
fn run_control<R>(
    tx: WriteTransaction,
    dry_run: bool,
    op: impl FnOnce(&WriteTransaction) -> Result<R, OpError>,
    epochs: &Epochs,
) -> Result<R, OpError> {
    match op(&tx) {
        Ok(value) if !dry_run => {
            tx.commit().map_err(|err| OpError::Store(err.into()))?;
            epochs.committed.send_modify(|epoch| *epoch += 1);
            Ok(value)
        }
        outcome => {
            let _ = tx.abort();
            outcome
        }
    }
}

/// The writer thread; dropping this does not stop it, [`StoreWriter::shutdown`] does.
#[derive(Debug)]
pub struct StoreWriter {
    handle: WriterHandle,
    thread: JoinHandle<()>,
}

impl StoreWriter {
    pub fn spawn(
        store: Store,
        commit_window: Duration,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<StoreWriter> {
        let (jobs, inbox) = mpsc::channel();
        let handle = WriterHandle {
            jobs,
            store: store.clone(),
            metrics: metrics.clone(),
            epochs: Arc::new(Epochs {
                committed: tokio::sync::watch::channel(0).0,
                settled: tokio::sync::watch::channel(0).0,
                guarded: AtomicBool::new(false),
            }),
        };
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(store, inbox, commit_window, metrics))?;
        Ok(StoreWriter { handle, thread })
    }

    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Commits everything queued and stops the thread.
    pub fn shutdown(self) {
        self.handle.send(Job::Shutdown);
        let _ = self.thread.join();
    }
}

#[derive(Default)]
struct Batch {
    points: Vec<(u64, Arc<Point>)>,
    access: Vec<(u64, u64, storage::access::AccessEvent)>,
    /// The arrival index entries of `points` and `access`, in arrival order.
    arrivals: Vec<storage::arrivals::Arrival>,
    statuses: HashMap<DeviceId, DeviceStatus>,
    stamps: Vec<storage::stamps::Given>,
    /// Who waits for this batch's commit: the units' PUBACKs.
    waiting: Vec<tokio::sync::oneshot::Sender<Outcome>>,
    deadline: Option<Instant>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.points.is_empty()
            && self.statuses.is_empty()
            && self.access.is_empty()
            && self.stamps.is_empty()
    }

    /// Cleared, not replaced: the next batch reuses their capacity instead of growing a
    /// fresh vector of up to MAX_BATCH_POINTS from nothing (the kernel zeroing its pages
    /// was a tenth of this thread). The waiters are the caller's to answer.
    fn clear(&mut self) {
        self.points.clear();
        self.statuses.clear();
        self.access.clear();
        self.arrivals.clear();
        self.stamps.clear();
    }
}

/// What handling one job left the writer to do.
enum Step {
    Continue,
    /// The store failed (the detail): recover before the next job. A flush that was
    /// waiting on the failed commit is answered after the recovery.
    Failed(String, Option<oneshot::Sender<()>>),
    Stop,
}

fn run(store: Store, inbox: mpsc::Receiver<Job>, window: Duration, metrics: Arc<Metrics>) {
    let mut batch = Batch::default();
    loop {
        let job = match batch.deadline {
            Some(deadline) => {
                inbox.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            }
            None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let step = match job {
            Ok(job) => {
                metrics.store_queue_depth.dec();
                handle(&store, job, &mut batch, window, &metrics)
            }
            Err(RecvTimeoutError::Timeout) => match commit_batch(&store, &mut batch, &metrics) {
                Ok(()) => Step::Continue,
                Err(failure) => Step::Failed(failure, None),
            },
            Err(RecvTimeoutError::Disconnected) => Step::Stop,
        };
        match step {
            Step::Continue => {}
            Step::Failed(failure, flush) => {
                let flushes = Vec::from_iter(flush);
                if !recover(&store, &inbox, &mut batch, &metrics, failure, flushes) {
                    break;
                }
            }
            Step::Stop => break,
        }
    }
    if commit_batch(&store, &mut batch, &metrics).is_err() {
        // Stopping with the store still failing: the units hear "not stored" and send
        // these again to the next gateway.
        fail_batch(&mut batch, &metrics);
    }
}

/// Takes one job in normal operation.
fn handle(store: &Store, job: Job, batch: &mut Batch, window: Duration, metrics: &Metrics) -> Step {
    let committed = match batch.take(job, window) {
        None if batch.points.len() >= MAX_BATCH_POINTS => commit_batch(store, batch, metrics),
        None => Ok(()),
        Some(Job::Control(op)) => {
            let result = op(store.begin_write());
            if result.is_err() {
                metrics.store_write_failures.inc();
            }
            result
        }
        Some(Job::Flush(reply)) => match commit_batch(store, batch, metrics) {
            Ok(()) => {
                let _ = reply.send(());
                Ok(())
            }
            Err(failure) => return Step::Failed(failure, Some(reply)),
        },
        Some(Job::Shutdown) => return Step::Stop,
        Some(_) => Ok(()),
    };
    match committed {
        Ok(()) => Step::Continue,
        Err(failure) => Step::Failed(failure, None),
    }
}

impl Batch {
    /// Adds a telemetry, access or status job to the batch (opening its window); hands any
    /// other job back.
    fn take(&mut self, job: Job, window: Duration) -> Option<Job> {
        match job {
            Job::Point {
                asset_key,
                point,
                arrival,
                mirrors,
                done,
            } => {
                // Its reading within the millisecond is known once written (write_batch).
                let what = Arrived::Point {
                    asset_key,
                    ts: point.ts,
                    reading: 0,
                };
                self.arrivals.push(arrival.entry(what));
                for (i, mirror_key) in (1..).zip(mirrors) {
                    let view = Arrived::View {
                        mirror_key,
                        ts: point.ts,
                        reading: 0,
                    };
                    let id = storage::arrivals::ArrivalId(arrival.id.0 + i);
                    self.arrivals.push(Stamp { id, ..arrival }.entry(view));
                }
                self.points.push((asset_key, point));
                self.waiting.extend(done);
            }
            Job::Access {
                asset_key,
                seq,
                event,
                arrival,
                done,
            } => {
                let what = Arrived::Access {
                    asset_key,
                    ts: event.ts,
                    seq,
                };
                self.arrivals.push(arrival.entry(what));
                self.access.push((asset_key, seq, event));
                self.waiting.extend(done);
            }
            Job::Status { device, status } => {
                self.statuses.insert(device, status);
            }
            Job::Stamp(given) => self.stamps.push(given),
            other => return Some(other),
        }
        self.deadline.get_or_insert_with(|| Instant::now() + window);
        None
    }
}

/// Until the store writes again: waits (doubling from [`FIRST_RETRY`] to [`LAST_RETRY`]),
/// reopens the database, and commits what waited (the batch the failure interrupted and
/// the points that arrived since), or a probe when nothing did: a reopen alone does not
/// show that the disk has room. Jobs that arrive meanwhile are answered as the module docs
/// say. Returns false when the writer is to stop.
fn recover(
    store: &Store,
    inbox: &mpsc::Receiver<Job>,
    batch: &mut Batch,
    metrics: &Metrics,
    mut failure: String,
    mut flushes: Vec<oneshot::Sender<()>>,
) -> bool {
    let mut retry = FIRST_RETRY;
    loop {
        tracing::error!(%failure, ?retry, "the store cannot write; reopening it");
        store.mark_unavailable(failure.clone(), SystemClock.now());
        if !wait_answering(inbox, batch, &mut flushes, retry, &failure, metrics) {
            return false;
        }
        retry = (retry * 2).min(LAST_RETRY);
        if let Err(err) = store.reopen() {
            failure = err.to_string();
            continue;
        }
        metrics.store_reopens.inc();
        let written = if batch.is_empty() {
            store.probe().map_err(|err| {
                metrics.store_write_failures.inc();
                err.to_string()
            })
        } else {
            commit_batch(store, batch, metrics)
        };
        match written {
            Ok(()) => {
                store.mark_healthy();
                tracing::info!("the store writes again");
                for reply in flushes {
                    let _ = reply.send(());
                }
                return true;
            }
            Err(err) => failure = err,
        }
    }
}

/// Takes jobs for `wait` while the store is down: telemetry joins the batch, control
/// operations are refused as unavailable, flushes wait for the recovery. Returns false on
/// shutdown.
fn wait_answering(
    inbox: &mpsc::Receiver<Job>,
    batch: &mut Batch,
    flushes: &mut Vec<oneshot::Sender<()>>,
    wait: Duration,
    failure: &str,
    metrics: &Metrics,
) -> bool {
    let until = Instant::now() + wait;
    loop {
        let job = match inbox.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => return true,
            Err(RecvTimeoutError::Disconnected) => return false,
        };
        metrics.store_queue_depth.dec();
        match batch.take(job, Duration::ZERO) {
            None => {}
            Some(Job::Control(op)) => {
                let _ = op(Err(StoreError::Unavailable(failure.to_owned())));
            }
            Some(Job::Flush(reply)) => flushes.push(reply),
            Some(Job::Shutdown) => return false,
            Some(_) => {}
        }
    }
}

/// Commits the batch in one durable transaction and tells its waiters. Errors: the store
/// failed (an I/O failure, the detail): the batch is kept, unacknowledged, for the retry
/// after the reopen. Any other failure (a record that cannot be written) is final for the
/// batch: its waiters hear "not stored" and the units send the points again.
fn commit_batch(store: &Store, batch: &mut Batch, metrics: &Metrics) -> Result<(), String> {
    batch.deadline = None;
    if batch.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let result = write_batch(store, batch);
    let points = batch.points.len();
    match result {
        Ok(()) => {
            // Before the waiters hear of it: a unit that sees its PUBACK after an outage
            // finds the store healthy again.
            store.mark_healthy();
            batch.clear();
            metrics.store_commits.inc();
            metrics.store_batch_points.observe(points as f64);
            metrics
                .store_commit_seconds
                .observe(started.elapsed().as_secs_f64());
            for done in batch.waiting.drain(..) {
                let _ = done.send(Outcome::Accepted);
            }
            Ok(())
        }
        Err(err) if err.is_io_failure() => {
            metrics.store_write_failures.inc();
            tracing::error!(%err, points, "telemetry commit failed; kept for after the reopen");
            Err(err.to_string())
        }
        Err(err) => {
            metrics.store_write_failures.inc();
            tracing::error!(%err, points, "telemetry commit failed");
            fail_batch(batch, metrics);
            Ok(())
        }
    }
}

fn write_batch(store: &Store, batch: &Batch) -> Result<(), StoreError> {
    let tx = store.begin_write()?;
    storage::stamps::record_all(&tx, &batch.stamps)?;
    let points = batch.points.iter().map(|(key, point)| (*key, &**point));
    let mut readings = storage::ops::write_points(&tx, points)?.into_iter();
    storage::ops::write_access_events(
        &tx,
        batch
            .access
            .iter()
            .map(|(key, seq, event)| (*key, *seq, event)),
    )?;
    // The points' entries follow `points` in order: each gets the reading it landed as,
    // and its mirrors' views, which follow it, the same.
    let mut reading = 0;
    let arrivals: Vec<storage::arrivals::Arrival> = batch
        .arrivals
        .iter()
        .map(|arrival| match arrival.what {
            Arrived::Point { asset_key, ts, .. } => {
                reading = readings.next().unwrap_or(0);
                storage::arrivals::Arrival {
                    what: Arrived::Point {
                        asset_key,
                        ts,
                        reading,
                    },
                    ..*arrival
                }
            }
            Arrived::View { mirror_key, ts, .. } => storage::arrivals::Arrival {
                what: Arrived::View {
                    mirror_key,
                    ts,
                    reading,
                },
                ..*arrival
            },
            Arrived::Access { .. } => *arrival,
        })
        .collect();
    storage::arrivals::record(&tx, &arrivals)?;
    for (device, status) in &batch.statuses {
        storage::ops::write_status(&tx, device, status)?;
    }
    tx.commit()?;
    Ok(())
}

/// Not stored: say so loudly, count them, and tell the units' sessions, which withhold the
/// PUBACK so the units send them again.
fn fail_batch(batch: &mut Batch, metrics: &Metrics) {
    for _ in 0..batch.points.len() {
        metrics.dropped("store_error");
    }
    batch.clear();
    for done in batch.waiting.drain(..) {
        let _ = done.send(Outcome::NotStored);
    }
}
