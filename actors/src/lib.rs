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
//! **Invariant:** this crate knows nothing about HTTP or rumqttd: MQTT output goes through
//! the [`MqttPublisher`] trait that the gateway implements.

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

/// Publishes to the embedded broker. Implementations must not block the caller for long:
/// actors call it on their own threads for every delivered point.
pub trait MqttPublisher: Send + Sync + std::fmt::Debug {
    fn publish(&self, topic: String, payload: Bytes, retain: bool);
}

/// What every actor shares: where to write, what to count, what time it is, how to publish.
#[derive(Clone, Debug)]
pub struct Context {
    pub writer: writer::WriterHandle,
    pub metrics: Arc<metrics::Metrics>,
    pub clock: Arc<dyn Clock>,
    pub mqtt: Arc<dyn MqttPublisher>,
}
