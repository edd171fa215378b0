//! `DeviceActor`: one per registered unit, the only place that decides who receives its
//! points.
//!
//! It validates and decodes what the unit sends, stamps points that carry no time, keeps
//! the latest point and the unit's status, hands points to the store writer and fans them
//! out to the `AccountActor`s of its audience. Messages from one unit are handled in
//! order, so an audience change acknowledged by this actor is a clean cut: no point handled
//! after it reaches an account that was removed.

use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use storage::model::{BoundAsset, DeviceStatus};
use storage::telemetry::{self, Point};
use storage::{AccountId, AssetId, DeviceId};

use crate::account::{AccountActor, Deliver, Live};
use crate::{Completion, Context as Shared, Outcome};

/// An account that may see this unit's points, under the asset id it knows them by.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub account_id: AccountId,
    pub asset_id: AssetId,
    /// For a telemetry mirror, the mirror asset's key (see [`crate::audience`]).
    pub mirror: Option<u64>,
    pub addr: Addr<AccountActor>,
    /// This viewer's sight ([`storage::window::Window`]): a point reaches it only when
    /// the point's `ts` lies inside and the access is in force at arrival.
    pub window: storage::window::Window,
}

impl crate::audience::View for Viewer {
    fn account(&self) -> &AccountId {
        &self.account_id
    }

    fn asset(&self) -> &AssetId {
        &self.asset_id
    }

    fn mirror(&self) -> Option<u64> {
        self.mirror
    }
}

/// A unit's audience, ordered for live delivery (see [`crate::audience`]).
pub type Audience = crate::audience::Audience<Viewer>;

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
    /// The unit's account: its telemetry retention decides which stamps are kept.
    pub(crate) account_id: storage::AccountId,
    pub(crate) binding: Option<BoundAsset>,
    /// Who sees the unit's points: the direct views, then the mirrors, each of which takes
    /// an id of its own (see [`Audience`]).
    pub(crate) audience: Audience,
    latest: Option<Arc<Point>>,
    pub(crate) status: DeviceStatus,
    /// The unit's key set as last built (see `crate::keys`); published retained.
    pub(crate) key_set: Option<storage::keys::KeySet>,
    /// Callers waiting for the unit to acknowledge a key-set version.
    pub(crate) ack_waiters: Vec<(u64, tokio::sync::oneshot::Sender<()>)>,
    /// Keeps access events of one millisecond apart in the store.
    pub(crate) access_seq: u64,
    /// How far the unit's clock runs from the gateway's (from the points it stamps).
    clock_skew: crate::clock_skew::ClockSkew,
    /// Stamps given to recent unstamped QoS 1/2 points, by packet id and payload hash: a
    /// redelivery (DUP) of one gets the same stamp, so it is stored once, not twice.
    recent_stamps: std::collections::VecDeque<(u16, u64, u64)>,
    /// Deregistration closes the unit's session and revokes its certificate; anything
    /// still in flight from it is refused and counted.
    deregistered: bool,
    /// The unit's sessions since the gateway started (not stored).
    pub(crate) session: SessionStats,
    /// A status change from a point waits to be written (see [`STATUS_EVERY`]).
    status_due: bool,
    pub(crate) shared: Shared,
}

/// What a `DeviceActor` starts with, read from the store.
#[derive(Debug)]
pub struct Loaded {
    pub account_id: storage::AccountId,
    pub binding: Option<BoundAsset>,
    pub audience: Vec<Viewer>,
    pub latest: Option<Point>,
    pub status: DeviceStatus,
    pub deregistered: bool,
    pub key_set: Option<storage::keys::KeySet>,
    /// The stamps given to its unstamped QoS 1/2 points, oldest first (see `stamp`).
    pub recent_stamps: Vec<(u16, u64, u64)>,
}

impl DeviceActor {
    pub fn new(device_id: DeviceId, loaded: Loaded, shared: Shared) -> Self {
        DeviceActor {
            device_id,
            account_id: loaded.account_id,
            binding: loaded.binding,
            audience: Audience::new(loaded.audience),
            latest: loaded.latest.map(Arc::new),
            status: loaded.status,
            clock_skew: Default::default(),
            recent_stamps: loaded.recent_stamps.into_iter().collect(),
            session: SessionStats::default(),
            status_due: false,
            key_set: loaded.key_set,
            ack_waiters: Vec::new(),
            access_seq: 0,
            deregistered: loaded.deregistered,
            shared,
        }
    }

    /// Why a point stamped `ts` would not be kept: older than the account's telemetry
    /// retention at `now`, so the next prune would delete it. Acknowledging it as stored
    /// would break that promise; it is refused instead, and the unit told.
    fn past_retention(
        &self,
        ts: storage::time::Timestamp,
        now: storage::time::Timestamp,
    ) -> Option<String> {
        let (oldest, days) = self.shared.horizon.oldest_kept(&self.account_id, now)?;
        (ts < oldest).then(|| {
            format!("ts: older than the account's telemetry retention ({days} days); not kept")
        })
    }

    /// Counts a refused message, names it in the status, and answers its completion.
    pub(crate) fn refuse(&mut self, reason: &'static str, detail: String, done: Completion) {
        if let Some(done) = done {
            let _ = done.send(Outcome::Refused(reason));
        }
        self.shared.metrics.dropped(reason);
        self.note_error(detail);
    }

    /// Names an error in the status (last error, error count).
    fn note_error(&mut self, detail: String) {
        let now = self.shared.clock.now();
        self.status.error_count += 1;
        self.status.last_error = Some(detail);
        self.status.last_error_at = Some(now);
        self.status.last_seen = Some(now);
        self.shared
            .writer
            .status(self.device_id.clone(), self.status.clone());
    }

    /// Writes the status a point changed (counts, last seen) within [`STATUS_EVERY`]: one
    /// status per unit per interval instead of one per point, which cost the writer a job,
    /// a clone and a map insert for every point.
    fn save_status_soon(&mut self, ctx: &mut actix::Context<Self>) {
        if self.status_due {
            return;
        }
        self.status_due = true;
        ctx.run_later(STATUS_EVERY, |actor, _| actor.save_status_now());
    }

    fn save_status_now(&mut self) {
        if std::mem::take(&mut self.status_due) {
            self.shared
                .writer
                .status(self.device_id.clone(), self.status.clone());
        }
    }

    fn telemetry(&mut self, msg: Inbound, ctx: &mut actix::Context<Self>) {
        let Some(binding) = self.binding.clone() else {
            self.refuse(
                "unbound_device",
                "device is not bound to an asset; point dropped".into(),
                msg.done,
            );
            return;
        };
        let now = self.shared.clock.now();
        let mut decoded = match telemetry::decode(&msg.payload, now) {
            Ok(decoded) => decoded,
            Err(err) => {
                self.refuse(err.reason(), err.to_string(), msg.done);
                return;
            }
        };
        if let Some(detail) = decoded.unit_ts.and_then(|ts| self.past_retention(ts, now)) {
            self.refuse("past_retention", detail, msg.done);
            return;
        }
        match decoded.unit_ts {
            Some(ts) => self.clock_skew.observe(ts.0, now.0),
            None => decoded.point.ts = storage::time::Timestamp(self.stamp(&msg, now.0)),
        }
        let point = Arc::new(decoded.point);
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
        // One predicate with history and latest: judged by the point's own stamp, so a
        // buffered upload from before a grant started stays hidden from the grantee.
        let seen = |viewer: &&Viewer| viewer.window.in_force(now) && viewer.window.shows(point.ts);
        // Each mirror's view takes an id of its own after the point's (design 5.4).
        let mirrors: Vec<&Viewer> = self.audience.mirrors().iter().filter(seen).collect();
        // Id, store job, then offers, under the arrival order (see `crate::arrival`).
        let arrivals = self.shared.arrivals.clone();
        let mut order = arrivals.order();
        let arrival = order.take_span(now, 1 + mirrors.len() as u32);
        let keys = mirrors.iter().filter_map(|viewer| viewer.mirror).collect();
        let writer = &self.shared.writer;
        if !writer.point(binding.asset_key, point.clone(), (arrival, keys), msg.done) {
            self.shared.metrics.dropped("store_error");
        }
        let direct = self.audience.direct().iter().filter(seen).map(|v| (v, 0));
        for (viewer, offset) in direct.chain(mirrors.into_iter().zip(1..)) {
            let event = Deliver {
                asset_id: viewer.asset_id.clone(),
                arrival: storage::arrivals::ArrivalId(arrival.id.0 + offset),
                payload: Live::Point(point.clone()),
            };
            crate::account::offer(&viewer.addr, &viewer.account_id, event, &self.shared);
        }
        drop(order);
        self.save_status_soon(ctx);
    }

    /// A stamp for an unstamped point: the gateway's clock, never ahead of it (two points
    /// in one millisecond share it and are both kept: see `storage::telemetry::row`), and
    /// the same stamp again for a redelivery (DUP) of the same packet, so it is stored once.
    fn stamp(&mut self, msg: &Inbound, now_ms: u64) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        msg.payload.hash(&mut hasher);
        let hash = hasher.finish();
        if let (true, Some(packet_id)) = (msg.dup, msg.packet_id) {
            if let Some((_, _, stamp)) = self
                .recent_stamps
                .iter()
                .find(|(id, h, _)| *id == packet_id && *h == hash)
            {
                return *stamp;
            }
        }
        let stamp = now_ms;
        if let Some(packet_id) = msg.packet_id {
            if self.recent_stamps.len() >= RECENT_STAMPS {
                self.recent_stamps.pop_front();
            }
            self.recent_stamps.push_back((packet_id, hash, stamp));
            // Kept in the store too: a redelivery after a restart finds it there.
            let given = (self.device_id.clone(), packet_id, hash, stamp);
            if !self.shared.writer.stamp(given) {
                self.shared.metrics.dropped("store_error");
            }
        }
        stamp
    }

    /// `/status` payloads are still accepted (units publish `online` and set an `offline`
    /// will), but presence comes from the transport's connect and disconnect events.
    fn presence(&mut self, msg: Inbound) {
        match msg.payload.trim_ascii() {
            b"online" | b"offline" => {
                self.status.last_seen = Some(self.shared.clock.now());
                if let Some(done) = msg.done {
                    let _ = done.send(Outcome::Accepted);
                }
            }
            _ => self.refuse(
                "invalid_status",
                "status: expected \"online\" or \"offline\"".into(),
                msg.done,
            ),
        }
    }
}

impl Actor for DeviceActor {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.shared.metrics.actor_started("device");
        ctx.set_mailbox_capacity(MAILBOX);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        // The gateway stops actors before the writer: a waiting status is still written.
        self.save_status_now();
        self.shared.metrics.actor_stopped("device");
    }
}

/// How long a status changed by points may wait to be written. Statuses are not part of
/// what a PUBACK promises (the live status is read from the actor); after a hard crash the
/// stored one may miss up to this much of a unit's counts.
pub const STATUS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Messages a device actor queues before senders wait: above a session's receive maximum
/// (64), so a unit's publishes are handed over without waiting in the usual case.
pub const MAILBOX: usize = 256;

/// How many unstamped points' stamps are remembered for redeliveries: more than a
/// session's receive maximum, so every point a unit may resend is covered.
const RECENT_STAMPS: usize = 256;

/// A message the unit published, as its session received it.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Inbound {
    pub channel: Channel,
    pub payload: Bytes,
    /// The MQTT packet id (QoS 1 and 2).
    pub packet_id: Option<u16>,
    /// The unit marked it as a possible redelivery.
    pub dup: bool,
    /// Hears how it ended: after the commit for what is stored.
    pub done: Completion,
}

impl Handler<Inbound> for DeviceActor {
    type Result = ();

    fn handle(&mut self, msg: Inbound, ctx: &mut Self::Context) {
        // A deregistered unit's acknowledgement of its emptied key set still counts: it
        // says the unit dropped its keys. Everything else it sends is dropped.
        if self.deregistered && !matches!(msg.channel, Channel::KeyAck) {
            self.shared.metrics.dropped("deregistered");
            if let Some(done) = msg.done {
                let _ = done.send(Outcome::Refused("deregistered"));
            }
            return;
        }
        match msg.channel {
            Channel::Telemetry => self.telemetry(msg, ctx),
            Channel::Status => self.presence(msg),
            Channel::KeyAck => self.key_ack(msg),
            Channel::AccessEvent => self.access_event(msg),
        }
    }
}

/// The unit's sessions as the transport reported them since the gateway started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// The current session, while connected.
    pub current: Option<u64>,
    pub connected_since: Option<storage::time::Timestamp>,
    pub connects: u64,
    /// Connections that replaced a live one of the same unit.
    pub takeovers: u64,
    pub last_disconnect_reason: Option<String>,
    pub last_disconnect_at: Option<storage::time::Timestamp>,
}

/// The stored status and the live session figures.
#[derive(Debug, Clone)]
pub struct LiveStatus {
    pub stored: DeviceStatus,
    pub session: SessionStats,
    /// The median of `ts - arrival` over the unit's recent self-stamped points that were
    /// not buffered uploads, ms (positive: its clock runs ahead); `None` before one.
    pub clock_offset_ms: Option<i64>,
}

#[derive(Message, Debug)]
#[rtype(result = "LiveStatus")]
pub struct GetStatus;

impl Handler<GetStatus> for DeviceActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Self::Context) -> Self::Result {
        MessageResult(LiveStatus {
            stored: self.status.clone(),
            session: self.session.clone(),
            clock_offset_ms: self.clock_skew.offset_ms(),
        })
    }
}

/// The transport opened a session for this unit (`took_over`: it replaced a live one).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SessionOpened {
    pub session: u64,
    pub took_over: bool,
}

impl Handler<SessionOpened> for DeviceActor {
    type Result = ();

    fn handle(&mut self, msg: SessionOpened, _: &mut Self::Context) {
        let now = self.shared.clock.now();
        self.session.current = Some(msg.session);
        self.session.connected_since = Some(now);
        self.session.connects += 1;
        if msg.took_over {
            self.session.takeovers += 1;
        }
        self.status.online = true;
        self.status.last_seen = Some(now);
        self.shared
            .writer
            .status(self.device_id.clone(), self.status.clone());
    }
}

/// A session of this unit ended. After a takeover the old session's end arrives after the
/// new one opened: it is recorded but leaves the unit online.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SessionClosed {
    pub session: u64,
    pub reason: String,
}

impl Handler<SessionClosed> for DeviceActor {
    type Result = ();

    fn handle(&mut self, msg: SessionClosed, _: &mut Self::Context) {
        let now = self.shared.clock.now();
        self.session.last_disconnect_reason = Some(msg.reason);
        self.session.last_disconnect_at = Some(now);
        if self.session.current == Some(msg.session) {
            self.session.current = None;
            self.session.connected_since = None;
            self.status.online = false;
            self.shared
                .writer
                .status(self.device_id.clone(), self.status.clone());
        }
    }
}

/// The transport refused something the unit sent or asked for (topic ACL).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Denied {
    pub reason: &'static str,
    pub detail: String,
}

impl Handler<Denied> for DeviceActor {
    type Result = ();

    fn handle(&mut self, msg: Denied, _: &mut Self::Context) {
        // Counted by the transport (`fleetgate_mqtt_acl_denied_total`); named here.
        self.note_error(format!("{}: {}", msg.reason, msg.detail));
    }
}

/// The transport refused a publish of the unit before it could be read (a packet over the
/// limit): counted as a dropped point and named in the status, as a refused point is.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Unreadable {
    pub reason: &'static str,
    pub detail: String,
}

impl Handler<Unreadable> for DeviceActor {
    type Result = ();

    fn handle(&mut self, msg: Unreadable, _: &mut Self::Context) {
        self.refuse(msg.reason, msg.detail, None);
    }
}

#[derive(Message, Debug)]
#[rtype(result = "Option<Point>")]
pub struct GetLatest;

impl Handler<GetLatest> for DeviceActor {
    type Result = Option<Point>;

    fn handle(&mut self, _: GetLatest, _: &mut Self::Context) -> Self::Result {
        self.latest.as_deref().cloned()
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
        self.audience = Audience::new(msg.audience);
        self.deregistered = msg.deregistered;
    }
}
