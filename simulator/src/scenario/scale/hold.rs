//! Many idle units held at once, whichever broker they dial: one task per unit (`unit.rs`),
//! at most `connect_parallelism` openings in flight, every unit told what to do next
//! through one phase channel. The gateway's half of the scale run and mosquitto's half
//! (`mosquitto/`) both go through here, so both brokers see exactly the same clients.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::conn::Dial;
use super::unit::{run_unit, Phase, Tally, UnitPlan};
use super::{wait_for, ANSWER_TIMEOUT, POLL};
use crate::scenario::{progress_bar, ErrorLog};

/// The units of one broker, from their first opening to their clean end.
pub(super) struct HeldUnits {
    tasks: JoinSet<()>,
    tally: Arc<Tally>,
    phase: watch::Sender<Phase>,
    units: u64,
}

impl HeldUnits {
    /// Starts one task per plan; each opens its session as soon as a connect slot is free,
    /// subscribes to its key set and holds the session. `tally` counts for all of them.
    pub(super) fn start(
        plans: Vec<UnitPlan>,
        dial: Arc<Dial>,
        tally: Arc<Tally>,
        connect_parallelism: usize,
    ) -> Self {
        let (phase, phase_rx) = watch::channel(Phase::Hold);
        let connect_slots = Arc::new(Semaphore::new(connect_parallelism.max(1)));
        let units = plans.len() as u64;
        let mut tasks = JoinSet::new();
        for plan in plans {
            tasks.spawn(run_unit(
                plan,
                dial.clone(),
                connect_slots.clone(),
                tally.clone(),
                phase_rx.clone(),
            ));
        }
        Self {
            tasks,
            tally,
            phase,
            units,
        }
    }

    pub(super) fn tally(&self) -> &Arc<Tally> {
        &self.tally
    }

    /// Waits until every unit opened, failed or was skipped (the run gave up after too many
    /// failures), showing `what` on the progress bar.
    pub(super) async fn wait_opened(&self, what: &'static str, quiet: bool) {
        let tally = &self.tally;
        let bar = progress_bar(self.units, what, quiet);
        loop {
            let settled = tally.opened.load(Ordering::Relaxed)
                + tally.failed.load(Ordering::Relaxed)
                + tally.skipped.load(Ordering::Relaxed);
            bar.set_position(settled);
            if settled >= self.units {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        bar.finish_and_clear();
    }

    /// Waits (at most [`ANSWER_TIMEOUT`]) until every open session holds its key set or had
    /// a key-set problem; false when some were still waiting.
    pub(super) async fn wait_key_sets(&self) -> bool {
        let tally = &self.tally;
        let done = || {
            tally.key_sets.load(Ordering::Relaxed) + tally.key_problems.load(Ordering::Relaxed)
                >= tally.open.load(Ordering::Relaxed)
        };
        wait_for(done).await;
        done()
    }

    /// Tells every unit what to do next.
    pub(super) fn command(&self, phase: Phase) {
        let _ = self.phase.send(phase);
    }

    /// Ends every session cleanly and waits for the unit tasks (at most
    /// [`ANSWER_TIMEOUT`]); tasks still running then are aborted and reported.
    pub(super) async fn stop(mut self, errors: &ErrorLog) {
        self.command(Phase::Stop);
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        while let Ok(Some(_)) = tokio::time::timeout_at(deadline, self.tasks.join_next()).await {}
        if !self.tasks.is_empty() {
            errors.push(format!(
                "{} unit tasks did not end in time",
                self.tasks.len()
            ));
            self.tasks.abort_all();
        }
    }
}
