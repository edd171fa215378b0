//! The live part of Fleetgate: one actor per device, one per account, and the single owner
//! of redb writes.
//!
//! # Layout
//! - [`device`]: `DeviceActor`, which decodes a unit's messages and decides who gets them.
//! - [`account`]: `AccountActor`, which delivers to an account's SSE and MQTT subscribers.
//! - [`keys`]: key-set distribution and access events on the `DeviceActor`.
//! - [`directory`]: finds or starts the actor of a device or account.
//! - [`writer`]: the store writer thread (group commit for telemetry, durable control ops).
//! - [`scheduler`]: applies grant starts and ends at their instants.
//! - [`metrics`]: the Prometheus registry every part counts into.
//!
//! **Invariant:** no telemetry reaches redb except through the store writer, and no account
//! receives a point except from the `DeviceActor` of the point's unit.
//! **Invariant:** this crate knows nothing about HTTP or MQTT sessions: output to units and
//! integrations goes through the [`MqttOut`] trait that the gateway's transport implements.

pub mod account;
pub mod device;
pub mod directory;
pub mod keys;
pub mod metrics;
pub mod scheduler;
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
}
