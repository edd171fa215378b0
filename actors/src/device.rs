//! `DeviceActor`: one per registered unit, the only place that decides who receives its
//! points.
//!
//! It validates and decodes what the unit sends, stamps points that carry no time, keeps
//! the latest point and the unit's status, hands points to the store writer and fans them
//! out to the `AccountActor`s of its audience. Messages from one unit are handled in
//! order, so an audience change acknowledged by this actor is a clean cut: no point handled
//! after it reaches an account that was removed.

use actix::prelude::*;
use bytes::Bytes;
use storage::model::{BoundAsset, DeviceStatus};
use storage::telemetry::{self, Point};
use storage::{AccountId, AssetId, DeviceId};

use crate::account::{AccountActor, Deliver};
use crate::Context as Shared;

/// An account that may see this unit's points, under the asset id it knows them by.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub account_id: AccountId,
    pub asset_id: AssetId,
    pub addr: Addr<AccountActor>,
    /// End of this viewer's grant window, checked on every point.
    pub until: Option<storage::time::Timestamp>,
}

/// Which of the unit's topics a message came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Telemetry,
    Status,
    KeyAck,
    AccessEvent,
}

#[derive(Debug)]
pub struct DeviceActor {
    pub(crate) device_id: DeviceId,
    pub(crate) binding: Option<BoundAsset>,
    pub(crate) audience: Vec<Viewer>,
    latest: Option<Point>,
    pub(crate) status: DeviceStatus,
    /// The unit's key set as last built (see `crate::keys`); published retained.
    pub(crate) key_set: Option<storage::keys::KeySet>,
    /// Callers waiting for the unit to acknowledge a key-set version.
    pub(crate) ack_waiters: Vec<(u64, tokio::sync::oneshot::Sender<()>)>,
    /// Keeps access events of one millisecond apart in the store.
    pub(crate) access_seq: u64,
    /// Last time the gateway stamped a point without `ts`; stamps never repeat, so two
    /// unstamped points in one millisecond do not overwrite each other.
    last_stamp: u64,
    /// A deregistered unit may still be connected (rumqttd cannot close it or revoke its
    /// certificate); everything it sends is dropped and counted.
    deregistered: bool,
    pub(crate) shared: Shared,
}

/// What a `DeviceActor` starts with, read from the store.
#[derive(Debug)]
pub struct Loaded {
    pub binding: Option<BoundAsset>,
    pub audience: Vec<Viewer>,
    pub latest: Option<Point>,
    pub status: DeviceStatus,
    pub deregistered: bool,
    pub key_set: Option<storage::keys::KeySet>,
}

impl DeviceActor {
    pub fn new(device_id: DeviceId, loaded: Loaded, shared: Shared) -> Self {
        // Stamps continue after the newest stored point: under load they run ahead of the
        // wall clock, and a restart must not hand out a used millisecond again (that point
        // would be overwritten).
        let last_stamp = loaded.latest.as_ref().map_or(0, |point| point.ts.0);
        DeviceActor {
            device_id,
            binding: loaded.binding,
            audience: loaded.audience,
            latest: loaded.latest,
            status: loaded.status,
            last_stamp,
            key_set: loaded.key_set,
            ack_waiters: Vec::new(),
            access_seq: 0,
            deregistered: loaded.deregistered,
            shared,
        }
    }

    pub(crate) fn refuse(&mut self, reason: &'static str, detail: String) {
        let now = self.shared.clock.now();
        self.shared.metrics.dropped(reason);
        self.status.error_count += 1;
        self.status.last_error = Some(detail);
        self.status.last_error_at = Some(now);
        self.status.last_seen = Some(now);
        self.shared
            .writer
            .status(self.device_id.clone(), self.status.clone());
    }

    fn telemetry(&mut self, payload: &[u8]) {
        let Some(binding) = self.binding.clone() else {
            self.refuse(
                "unbound_device",
                "device is not bound to an asset; point dropped".into(),
            );
            return;
        };
        let now = self.shared.clock.now();
        let mut decoded = match telemetry::decode(payload, now) {
            Ok(decoded) => decoded,
            Err(err) => {
                self.refuse(err.reason(), err.to_string());
                return;
            }
        };
        if decoded.unit_ts.is_none() {
            let stamp = now.0.max(self.last_stamp + 1);
            self.last_stamp = stamp;
            decoded.point.ts = storage::time::Timestamp(stamp);
        }
        let point = decoded.point;
        self.shared.metrics.points_ingested.inc();
        self.status.points += 1;
        self.status.last_seen = Some(now);
        if self
            .latest
            .as_ref()
            .is_none_or(|latest| latest.ts <= point.ts)
        {
            self.latest = Some(point.clone());
        }
        for viewer in self
            .audience
            .iter()
            .filter(|viewer| viewer.until.is_none_or(|until| now < until))
        {
            let json = point.to_json(&viewer.asset_id).to_string();
            viewer.addr.do_send(Deliver {
                asset_id: viewer.asset_id.clone(),
                event: "point",
                json: Bytes::from(json),
            });
        }
        self.shared.writer.point(binding.asset_key, point);
        self.shared
            .writer
            .status(self.device_id.clone(), self.status.clone());
    }

    fn presence(&mut self, payload: &[u8]) {
        let online = match payload.trim_ascii() {
            b"online" => true,
            b"offline" => false,
            _ => {
                self.refuse(
                    "invalid_status",
                    "status: expected \"online\" or \"offline\"".into(),
                );
                return;
            }
        };
        self.status.online = online;
        self.status.last_seen = Some(self.shared.clock.now());
        self.shared
            .writer
            .status(self.device_id.clone(), self.status.clone());
    }
}

impl Actor for DeviceActor {
    type Context = actix::Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        self.shared.metrics.actor_started("device");
        // The embedded broker starts empty: re-publish the retained key set so a unit that
        // connects gets its current keys.
        if self.key_set.as_ref().is_some_and(|set| set.version > 0) {
            self.publish_keys();
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.shared.metrics.actor_stopped("device");
    }
}

/// A message the unit published, as the ingest bridge received it.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Inbound {
    pub channel: Channel,
    pub payload: Bytes,
}

impl Handler<Inbound> for DeviceActor {
    type Result = ();

    fn handle(&mut self, msg: Inbound, _: &mut Self::Context) {
        if self.deregistered {
            self.shared.metrics.dropped("deregistered");
            return;
        }
        match msg.channel {
            Channel::Telemetry => self.telemetry(&msg.payload),
            Channel::Status => self.presence(&msg.payload),
            Channel::KeyAck => self.key_ack(&msg.payload),
            Channel::AccessEvent => self.access_event(&msg.payload),
        }
    }
}

#[derive(Message, Debug)]
#[rtype(result = "DeviceStatus")]
pub struct GetStatus;

impl Handler<GetStatus> for DeviceActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.status.clone())
    }
}

#[derive(Message, Debug)]
#[rtype(result = "Option<Point>")]
pub struct GetLatest;

impl Handler<GetLatest> for DeviceActor {
    type Result = Option<Point>;

    fn handle(&mut self, _: GetLatest, _: &mut Self::Context) -> Self::Result {
        self.latest.clone()
    }
}

/// Replaces the unit's asset binding and audience. The sender awaits the answer: once it
/// has it, every later point goes only to the new audience.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Rebind {
    pub binding: Option<BoundAsset>,
    pub audience: Vec<Viewer>,
    pub deregistered: bool,
}

impl Handler<Rebind> for DeviceActor {
    type Result = ();

    fn handle(&mut self, msg: Rebind, _: &mut Self::Context) {
        if self.binding.as_ref().map(|b| b.asset_key) != msg.binding.as_ref().map(|b| b.asset_key) {
            self.latest = None;
        }
        self.binding = msg.binding;
        self.audience = msg.audience;
        self.deregistered = msg.deregistered;
    }
}
