//! Key distribution on the `DeviceActor`: it holds its unit's key set, publishes it
//! retained on `/tenants/{d}/keys`, records the unit's acknowledgements
//! (`/tenants/{d}/keys/ack`), and lets a caller wait a bounded time for the ack of a
//! version. Access events the unit reports are validated, stored and sent live to the
//! owner here too.

use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use serde_json::json;
use storage::keys::KeySet;
use tokio::sync::oneshot;

use crate::account::{Deliver, Live};
use crate::device::{DeviceActor, Inbound};
use crate::Outcome;

/// The retained payload: `{version, keys:[{id, access_type, credential, valid_from, valid_to}]}`.
pub fn key_set_json(set: &KeySet) -> Bytes {
    let keys: Vec<_> = set
        .keys
        .iter()
        .map(|key| {
            json!({
                "id": key.id,
                "access_type": key.access_type.as_str(),
                "credential": key.credential,
                "valid_from": key.valid_from.to_rfc3339(),
                "valid_to": key.valid_to.to_rfc3339(),
            })
        })
        .collect();
    Bytes::from(json!({"version": set.version, "keys": keys}).to_string())
}

/// The version a unit says it holds: `{"version": <integer>}`, nothing else.
pub fn parse_key_ack(payload: &[u8]) -> Option<u64> {
    if payload.len() > storage::telemetry::MAX_PAYLOAD_BYTES {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let object = value.as_object()?;
    if object.len() != 1 {
        return None;
    }
    object.get("version")?.as_u64()
}

impl DeviceActor {
    /// Hands the current set to the unit's session; it reaches the unit if the unit is
    /// connected and subscribed, and otherwise on its next subscribe (from the store).
    pub(crate) fn publish_keys(&mut self) {
        let Some(set) = &self.key_set else { return };
        self.shared
            .mqtt
            .push_keys(&self.device_id, key_set_json(set));
        if self.status.online {
            self.mark_pushed();
        }
    }

    fn mark_pushed(&mut self) {
        let Some(set) = &self.key_set else { return };
        self.status.key_version_pushed = Some(set.version);
        self.shared
            .writer
            .status(self.device_id.clone(), self.status.clone());
    }

    pub(crate) fn key_ack(&mut self, msg: Inbound) {
        let Some(version) = parse_key_ack(&msg.payload) else {
            self.refuse(
                "bad_key_ack",
                "keys/ack: expected {\"version\": <integer>}".into(),
                msg.done,
            );
            return;
        };
        let current = self.key_set.as_ref().map_or(0, |set| set.version);
        if version > current {
            self.refuse(
                "key_ack_unknown_version",
                format!("keys/ack: version {version} was never sent (current {current})"),
                msg.done,
            );
            return;
        }
        if let Some(done) = msg.done {
            let _ = done.send(Outcome::Accepted);
        }
        let acked = self
            .status
            .key_version_acked
            .map_or(version, |old| old.max(version));
        self.status.key_version_acked = Some(acked);
        self.status.last_seen = Some(self.shared.clock.now());
        self.shared
            .writer
            .status(self.device_id.clone(), self.status.clone());
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ack_waiters)
            .into_iter()
            .partition(|(wanted, _)| *wanted <= acked);
        self.ack_waiters = waiting;
        for (_, waiter) in done {
            let _ = waiter.send(());
        }
    }

    pub(crate) fn access_event(&mut self, msg: Inbound) {
        let Some(binding) = self.binding.clone() else {
            self.refuse(
                "unbound_device",
                "device is not bound to an asset; access event dropped".into(),
                msg.done,
            );
            return;
        };
        let now = self.shared.clock.now();
        let event = match storage::access::decode(&msg.payload, now) {
            Ok(event) => event,
            Err(err) => {
                self.refuse(err.reason(), format!("events/access: {err}"), msg.done);
                return;
            }
        };
        self.access_seq += 1;
        let seq = now
            .0
            .wrapping_mul(1000)
            .wrapping_add(self.access_seq % 1000);
        // Id, store job, then the offer, under the arrival order (see `crate::arrival`).
        let arrivals = self.shared.arrivals.clone();
        let mut order = arrivals.order();
        let arrival = order.take(now);
        let owner = self.audience.find(&self.account_id, &binding.asset_id);
        let rendered = owner.map(|owner| Bytes::from(event.to_json(&owner.asset_id).to_string()));
        if !self
            .shared
            .writer
            .access_event(binding.asset_key, seq, event, arrival, msg.done)
        {
            self.shared.metrics.dropped("store_error");
        }
        // Access events are the owner's, on its own asset's view only: one id.
        if let (Some(owner), Some(rendered)) = (owner, rendered) {
            let live = Deliver {
                asset_id: owner.asset_id.clone(),
                arrival: arrival.id,
                payload: Live::Access(rendered),
            };
            crate::account::offer(&owner.addr, &owner.account_id, live, &self.shared);
        }
        drop(order);
    }
}

/// The unit's current key set payload, for a session that subscribed to its `keys`
/// (MQTT 3.1.1 §3.8.4: retained messages follow a new subscription). Built from the set the
/// store last gave this actor; a unit that wiped its key store gets it back this way.
#[derive(Message, Debug)]
#[rtype(result = "Option<Bytes>")]
pub struct GetKeySet;

impl Handler<GetKeySet> for DeviceActor {
    type Result = Option<Bytes>;

    fn handle(&mut self, _: GetKeySet, _: &mut Self::Context) -> Option<Bytes> {
        let payload = self.key_set.as_ref().map(key_set_json)?;
        self.mark_pushed();
        Some(payload)
    }
}

/// Replaces the unit's key set and publishes it retained.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct PushKeys(pub KeySet);

impl Handler<PushKeys> for DeviceActor {
    type Result = ();

    fn handle(&mut self, msg: PushKeys, _: &mut Self::Context) {
        // Versions only rise: an older build arriving late must not replace a newer one.
        if self
            .key_set
            .as_ref()
            .is_some_and(|held| held.version > msg.0.version)
        {
            return;
        }
        self.key_set = Some(msg.0);
        self.publish_keys();
    }
}

/// Resolves `true` once the unit acknowledged `version` (or a later one), `false` when it
/// is offline or `within` passes first.
#[derive(Message, Debug)]
#[rtype(result = "bool")]
pub struct AwaitAck {
    pub version: u64,
    pub within: Duration,
}

impl Handler<AwaitAck> for DeviceActor {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: AwaitAck, _: &mut Self::Context) -> Self::Result {
        if self
            .status
            .key_version_acked
            .is_some_and(|acked| acked >= msg.version)
        {
            return Box::pin(async { true });
        }
        if !self.status.online {
            return Box::pin(async { false });
        }
        let (waiter, acked) = oneshot::channel();
        self.ack_waiters.push((msg.version, waiter));
        Box::pin(async move { matches!(tokio::time::timeout(msg.within, acked).await, Ok(Ok(()))) })
    }
}
