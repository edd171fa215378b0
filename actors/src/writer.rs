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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use storage::model::DeviceStatus;
use storage::redb::WriteTransaction;
use storage::telemetry::Point;
use storage::{DeviceId, OpError, Store, StoreError};
use tokio::sync::oneshot;

use crate::metrics::Metrics;
use crate::{Completion, Outcome};

/// A batch this large is committed without waiting for the window to close.
pub const MAX_BATCH_POINTS: usize = 20_000;

type ControlJob = Box<dyn FnOnce(WriteTransaction) + Send>;

enum Job {
    Point {
        asset_key: u64,
        point: Arc<Point>,
        done: Completion,
    },
    Access {
        asset_key: u64,
        seq: u64,
        event: storage::access::AccessEvent,
        done: Completion,
    },
    Status {
        device: DeviceId,
        status: DeviceStatus,
    },
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

    /// Queues a point for the next group commit; `done` hears the outcome after the commit.
    /// Returns false once the writer has stopped (then `done` is dropped: not stored).
    pub fn point(&self, asset_key: u64, point: Arc<Point>, done: Completion) -> bool {
        self.send(Job::Point {
            asset_key,
            point,
            done,
        })
    }

    /// Queues an access event for the next group commit; `done` as for [`Self::point`].
    pub fn access_event(
        &self,
        asset_key: u64,
        seq: u64,
        event: storage::access::AccessEvent,
        done: Completion,
    ) -> bool {
        self.send(Job::Access {
            asset_key,
            seq,
            event,
            done,
        })
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
    pub async fn execute_or_dry<R, F>(&self, dry_run: bool, op: F) -> Result<R, OpError>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<R, OpError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let epochs = self.epochs.clone();
        let job: ControlJob = Box::new(move |tx: WriteTransaction| {
            let result = match op(&tx) {
                Ok(value) if !dry_run => match tx.commit() {
                    Ok(()) => {
                        epochs.committed.send_modify(|epoch| *epoch += 1);
                        Ok(value)
                    }
                    Err(err) => Err(OpError::Store(err.into())),
                },
                outcome => {
                    let _ = tx.abort();
                    outcome
                }
            };
            let _ = reply.send(result);
        });
        if !self.send(Job::Control(job)) {
            return Err(StoreError::WriterGone.into());
        }
        let result = answer.await.unwrap_or(Err(StoreError::WriterGone.into()));
        if result.is_ok() && !dry_run {
            self.settle().await;
        }
        result
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
    statuses: HashMap<DeviceId, DeviceStatus>,
    /// Who waits for this batch's commit: the units' PUBACKs.
    waiting: Vec<tokio::sync::oneshot::Sender<Outcome>>,
    deadline: Option<Instant>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.points.is_empty() && self.statuses.is_empty() && self.access.is_empty()
    }
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
        let job = match job {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                commit_batch(&store, &mut batch, &metrics);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        metrics.store_queue_depth.dec();
        match job {
            Job::Point {
                asset_key,
                point,
                done,
            } => {
                batch.points.push((asset_key, point));
                batch.waiting.extend(done);
                batch
                    .deadline
                    .get_or_insert_with(|| Instant::now() + window);
                if batch.points.len() >= MAX_BATCH_POINTS {
                    commit_batch(&store, &mut batch, &metrics);
                }
            }
            Job::Access {
                asset_key,
                seq,
                event,
                done,
            } => {
                batch.access.push((asset_key, seq, event));
                batch.waiting.extend(done);
                batch
                    .deadline
                    .get_or_insert_with(|| Instant::now() + window);
            }
            Job::Status { device, status } => {
                batch.statuses.insert(device, status);
                batch
                    .deadline
                    .get_or_insert_with(|| Instant::now() + window);
            }
            Job::Control(op) => match store.begin_write() {
                Ok(tx) => op(tx),
                Err(err) => tracing::error!(%err, "cannot begin a control-plane transaction"),
            },
            Job::Flush(reply) => {
                commit_batch(&store, &mut batch, &metrics);
                let _ = reply.send(());
            }
            Job::Shutdown => break,
        }
    }
    commit_batch(&store, &mut batch, &metrics);
}

fn commit_batch(store: &Store, batch: &mut Batch, metrics: &Metrics) {
    batch.deadline = None;
    if batch.is_empty() {
        return;
    }
    let started = Instant::now();
    let result = (|| -> Result<(), StoreError> {
        let tx = store.begin_write()?;
        let points = batch.points.iter().map(|(key, point)| (*key, &**point));
        storage::ops::write_points(&tx, points)?;
        storage::ops::write_access_events(
            &tx,
            batch
                .access
                .iter()
                .map(|(key, seq, event)| (*key, *seq, event)),
        )?;
        for (device, status) in &batch.statuses {
            storage::ops::write_status(&tx, device, status)?;
        }
        tx.commit()?;
        Ok(())
    })();
    let points = batch.points.len();
    // Cleared, not replaced: the next batch reuses their capacity instead of growing a
    // fresh vector of up to MAX_BATCH_POINTS from nothing (the kernel zeroing its pages
    // was a tenth of this thread).
    batch.points.clear();
    batch.statuses.clear();
    batch.access.clear();
    match result {
        Ok(()) => {
            metrics.store_commits.inc();
            metrics.store_batch_points.observe(points as f64);
            metrics
                .store_commit_seconds
                .observe(started.elapsed().as_secs_f64());
            for done in batch.waiting.drain(..) {
                let _ = done.send(Outcome::Accepted);
            }
        }
        Err(err) => {
            // Not stored: say so loudly, count them, and tell the units' sessions, which
            // withhold the PUBACK so the units send them again.
            tracing::error!(%err, points, "telemetry commit failed");
            for _ in 0..points {
                metrics.dropped("store_error");
            }
            for done in batch.waiting.drain(..) {
                let _ = done.send(Outcome::NotStored);
            }
        }
    }
}
