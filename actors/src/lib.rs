//! The live part of Fleetgate: one actor per device, one per account, and the single owner
//! of redb writes.
//!
//! # Layout
//! - [`device`]: `DeviceActor`, which decodes a unit's messages and decides who gets them.
//! - [`account`]: `AccountActor`, which delivers to an account's SSE and MQTT subscribers.
//! - [`clock_skew`]: how far a unit's clock runs from the gateway's.
//! - [`arrival`]: the gateway-wide arrival order (the live events' ids).
//! - [`lag`]: a slow SSE reader's dropped events, reported as one gap.
//! - [`keys`]: key-set distribution and access events on the `DeviceActor`.
//! - [`directory`]: finds or starts the actor of a device or account.
//! - [`writer`]: the store writer thread (group commit for telemetry, durable control ops).
//! - [`scheduler`]: applies grant starts and ends at their instants.
//! - [`retention`]: the task that prunes expired rows, compacts the file and reports its
//!   size.
//! - [`usecases`]: every mutation, its transaction and its follow-ups, in one place.
//! - [`metrics`]: the Prometheus registry every part counts into.
//!
//! **Invariant:** no telemetry reaches redb except through the store writer, and no account
//! receives a point except from the `DeviceActor` of the point's unit.
//! **Invariant:** this crate knows nothing about HTTP or MQTT sessions: output to units and
//! integrations goes through the [`MqttOut`] trait that the gateway's transport implements.

pub mod account;
pub mod arrival;
pub mod audience;
pub mod clock_skew;
pub mod device;
pub mod directory;
pub mod horizon;
pub mod keys;
pub mod lag;
pub mod metrics;
pub mod retention;
pub mod scheduler;
pub mod shed;
pub mod usecases;
pub mod writer;

use std::sync::Arc;

use bytes::Bytes;
use storage::time::Clock;
use storage::{AccountId, AssetId, DeviceId};

/// Output to MQTT sessions. Implementations never block: actors call it on their own
/// threads for every delivered point; a session that cannot take more sheds and counts.
pub trait MqttOut: Send + Sync + std::fmt::Debug {
    /// The unit's key set changed: send it to the unit's session if it is subscribed to
    /// `/tenants/{d}/keys` (a unit that is away gets it from the store when it subscribes).
    fn push_keys(&self, device: &DeviceId, payload: Bytes);
    /// Whether an integration of `account` may want its points (a live or persistent
    /// integration session): when not, the point is not rendered for it at all.
    fn listening(&self, account: &AccountId) -> bool;
    /// A point for the account's integration on `/tenants/{a}/assets/{x}/telemetry`.
    fn deliver(&self, account: &AccountId, asset: &AssetId, payload: Bytes);
    /// Access may have ended (a control-plane commit): points queued for integrations
    /// (a persistent session away, a live one behind) that their account no longer sees
    /// must not leave. Called by the stream guard before the commit's caller answers.
    fn access_changed(&self);
}

/// How a unit's publish ended, as its acknowledgement will say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored (telemetry, access events: after the group commit that holds it) or applied.
    Accepted,
    /// Refused for good: malformed, over a limit, not allowed. The label is the reason it
    /// is counted under (`fleetgate_points_dropped_total{reason}`).
    Refused(&'static str),
    /// The store failed to commit it: not acknowledged, so the unit sends it again.
    NotStored,
}

/// Where an [`Outcome`] is reported; `None` for QoS 0, which nobody waits for.
pub type Completion = Option<tokio::sync::oneshot::Sender<Outcome>>;

/// What every actor shares: where to write, what to count, what time it is, how to publish.
#[derive(Clone, Debug)]
pub struct Context {
    pub writer: writer::WriterHandle,
    pub metrics: Arc<metrics::Metrics>,
    pub clock: Arc<dyn Clock>,
    pub mqtt: Arc<dyn MqttOut>,
    /// The arrival order every accepted point and access event takes its id in.
    pub arrivals: Arc<arrival::Arrivals>,
    /// Live events shed at a full account mailbox, for the account's streams to hear of.
    pub shed: Arc<shed::ShedLedger>,
    /// Each account's telemetry retention: a point stamped before it is refused.
    pub horizon: Arc<horizon::Horizon>,
}

/// Runs a committed change's follow-ups (or a whole change: its commit and follow-ups) in
/// a task of its own and waits for it. An HTTP handler's future is dropped when its client
/// hangs up; work awaited inline there would stop wherever it was, possibly after the
/// commit and before the re-bind (a removed grantee would keep receiving points). A
/// spawned task is not dropped with its caller, so the work always completes. If the task
/// cannot finish (its runtime stopped), the caller hears [`storage::StoreError::Interrupted`].
pub async fn completing<T: 'static, E: From<storage::StoreError> + 'static>(
    work: impl std::future::Future<Output = Result<T, E>> + 'static,
) -> Result<T, E> {
    actix::spawn(work)
        .await
        .unwrap_or_else(|_| Err(storage::StoreError::Interrupted.into()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::FutureExt;
    use tokio::sync::{oneshot, Notify};

    use super::completing;

    /// A caller dropped while the work waits (an HTTP client that hung up) does not cancel
    /// it.
    #[actix_rt::test]
    async fn a_dropped_caller_does_not_stop_the_work() {
        let gate = Arc::new(Notify::new());
        let (done, finished) = oneshot::channel();
        let opened = gate.clone();
        let mut caller = Box::pin(completing(async move {
            opened.notified().await;
            let _ = done.send(());
            Ok::<(), storage::StoreError>(())
        }));
        assert!((&mut caller).now_or_never().is_none(), "still waiting");
        drop(caller);
        gate.notify_one();
        assert!(finished.await.is_ok(), "the work ran to its end");
    }
}
