//! `AccountActor`: one per account, the owner of that account's live subscribers.
//!
//! It receives points already addressed to the account (the `DeviceActor` decided the
//! account may see them) and delivers them to the account's SSE streams and to its MQTT
//! integration topic `/tenants/{a}/assets/{x}/telemetry`.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use storage::arrivals::ArrivalId;
use storage::telemetry::Point;
use storage::{AccountId, AssetId};
use tokio::sync::mpsc;

use crate::lag::{Admit, Gap, Lag};
use crate::Context as Shared;

/// How often idle streams get a comment line, which also finds closed ones.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Events buffered per subscriber (the default of [`Subscribe::buffer`]) before a slow
/// reader starts losing live events, which it then hears of as an `event: gap`.
pub const SUBSCRIBER_BUFFER: usize = 8192;
/// Live events queued for one account actor before device actors shed them (counted in
/// `fleetgate_live_shed_total`): a slow account never slows ingest.
pub const LIVE_MAILBOX: usize = 16 * 1024;

/// One event on a live stream.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// A point or access event: its arrival id (the SSE `id:`), its SSE event name
    /// (`point`, `access`) and its JSON data.
    Event {
        id: ArrivalId,
        event: &'static str,
        data: Bytes,
    },
    /// Events this subscriber missed because its buffer was full (`event: gap`, no id, so
    /// the client's last id stays the one before the gap).
    Gap(Gap),
    KeepAlive,
}

impl LiveEvent {
    /// The event as server-sent-events wire text.
    pub fn to_sse(&self) -> Bytes {
        match self {
            LiveEvent::Event { id, event, data } => sse_frame(Some(*id), event, data),
            LiveEvent::Gap(gap) => sse_frame(None, "gap", gap.to_json().as_bytes()),
            LiveEvent::KeepAlive => Bytes::from_static(b": keep-alive\n\n"),
        }
    }
}

/// One SSE event: `id:` (when given), `event:` and a one-line `data:`.
pub fn sse_frame(id: Option<ArrivalId>, event: &str, data: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(data.len() + event.len() + 40);
    if let Some(id) = id {
        frame.extend_from_slice(format!("id: {id}\n").as_bytes());
    }
    frame.extend_from_slice(b"event: ");
    frame.extend_from_slice(event.as_bytes());
    frame.extend_from_slice(b"\ndata: ");
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

/// Answers whether a live stream's principal may still see what the stream shows, read
/// from the store at the moment it is asked (token, role, support access, grants). Built by
/// whoever opened the stream (the HTTP layer, which knows how the caller authenticated).
pub type StillAllowed = Box<dyn Fn() -> bool + Send>;

struct Subscriber {
    /// `None` streams every asset of the account; `Some` one asset.
    only: Option<AssetId>,
    /// Dropping the HTTP response drops the receiver; a failed send then removes this entry.
    /// Dropping this sender ends the HTTP response.
    events: mpsc::Sender<LiveEvent>,
    /// The authority the stream was opened under; checked again after every change.
    allowed: StillAllowed,
    /// What this subscriber dropped for want of room, and the gap it is still to hear of.
    lag: Lag,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("only", &self.only)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct AccountActor {
    account_id: AccountId,
    subscribers: Vec<Subscriber>,
    /// The [`crate::shed::ShedLedger`] generation this actor last took its losses at.
    shed_seen: u64,
    /// The accounts with an open stream: this actor is in it while it has a subscriber,
    /// so the stream guard asks only those after a commit.
    streaming: Streaming,
    shared: Shared,
}

/// The accounts whose actor holds at least one live stream (see [`AccountActor`]).
pub type Streaming = Arc<std::sync::Mutex<std::collections::HashSet<AccountId>>>;

impl AccountActor {
    pub fn new(account_id: AccountId, streaming: Streaming, shared: Shared) -> Self {
        AccountActor {
            account_id,
            subscribers: Vec::new(),
            shed_seen: 0,
            streaming,
            shared,
        }
    }

    /// Hands what was shed before reaching this actor to the streams that would have
    /// shown it (an asset's stream only its asset's), as part of their next gap.
    fn absorb_shed(&mut self) {
        let generation = self.shared.shed.generation();
        if generation == self.shed_seen {
            return;
        }
        self.shed_seen = generation;
        for (asset, lost) in self.shared.shed.take(&self.account_id) {
            for subscriber in &mut self.subscribers {
                if subscriber.only.as_ref().is_none_or(|only| only == &asset) {
                    subscriber.lag.merge(lost);
                }
            }
        }
    }

    /// Keeps this account in [`Streaming`] exactly while it has subscribers.
    fn note_streaming(&self) {
        let mut streaming = self
            .streaming
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.subscribers.is_empty() {
            streaming.remove(&self.account_id);
        } else {
            streaming.insert(self.account_id.clone());
        }
    }

    fn retain_open(&mut self) {
        self.retain(|_| true);
    }

    /// Keeps the subscribers whose stream is open and `keep` accepts; dropping the others'
    /// senders ends their HTTP responses.
    fn retain(&mut self, mut keep: impl FnMut(&Subscriber) -> bool) {
        let before = self.subscribers.len();
        self.subscribers
            .retain(|subscriber| !subscriber.events.is_closed() && keep(subscriber));
        let removed = before - self.subscribers.len();
        self.shared.metrics.sse_subscribers.dec_by(removed as i64);
        if removed > 0 {
            self.note_streaming();
        }
    }
}

impl Actor for AccountActor {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.shared.metrics.actor_started("account");
        ctx.set_mailbox_capacity(LIVE_MAILBOX);
        ctx.run_interval(KEEP_ALIVE, |actor, _| {
            actor.absorb_shed();
            for subscriber in &mut actor.subscribers {
                // A stream that went quiet after losing events hears of the gap now.
                let event = match subscriber.lag.flush(subscriber.events.capacity()) {
                    Some(gap) => LiveEvent::Gap(gap),
                    None => LiveEvent::KeepAlive,
                };
                let _ = subscriber.events.try_send(event);
            }
            actor.retain_open();
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.shared.metrics.actor_stopped("account");
        self.shared
            .metrics
            .sse_subscribers
            .dec_by(self.subscribers.len() as i64);
        self.subscribers.clear();
        self.note_streaming();
    }
}

/// A point or access event for this account, under the asset id the account knows.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Deliver {
    pub asset_id: AssetId,
    /// Its place in the gateway's arrival order (see `crate::arrival`): the SSE `id:`. A
    /// mirror's view of a point has an id of its own (`crate::audience`).
    pub arrival: ArrivalId,
    pub payload: Live,
}

/// What a [`Deliver`] carries.
#[derive(Debug, Clone)]
pub enum Live {
    /// A telemetry point, shared with the writer and the unit's latest: rendered here, and
    /// only if someone listens (most accounts have no open stream, and a reader whose
    /// buffer is full would drop it anyway).
    Point(Arc<Point>),
    /// An access event, rendered by the device actor (the owner's stream only).
    Access(Bytes),
}

impl Handler<Deliver> for AccountActor {
    type Result = ();

    fn handle(&mut self, msg: Deliver, _: &mut Self::Context) {
        self.absorb_shed();
        let (event, mut json) = match msg.payload {
            Live::Point(point) => ("point", Json::Point(point)),
            Live::Access(json) => ("access", Json::Rendered(json)),
        };
        // Integrations get points; access events are for the owner's live stream only.
        if let Json::Point(_) = json {
            if self.shared.mqtt.listening(&self.account_id) {
                let payload = json.rendered(&msg.asset_id);
                self.shared
                    .mqtt
                    .deliver(&self.account_id, &msg.asset_id, payload);
            }
        }
        let mut closed = false;
        for subscriber in &mut self.subscribers {
            if subscriber
                .only
                .as_ref()
                .is_some_and(|only| only != &msg.asset_id)
            {
                continue;
            }
            if subscriber.events.is_closed() {
                closed = true;
                continue;
            }
            // This actor is the only sender, so the room it sees is the room it has.
            match subscriber
                .lag
                .admit(subscriber.events.capacity(), msg.arrival)
            {
                Admit::Drop => {
                    self.shared.metrics.sse_events_dropped.inc();
                    continue;
                }
                Admit::GapFirst(gap) => {
                    let _ = subscriber.events.try_send(LiveEvent::Gap(gap));
                }
                Admit::Send => {}
            }
            let event = LiveEvent::Event {
                id: msg.arrival,
                event,
                data: json.rendered(&msg.asset_id),
            };
            match subscriber.events.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    subscriber.lag.dropped(msg.arrival);
                    self.shared.metrics.sse_events_dropped.inc();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => closed = true,
            }
        }
        if closed {
            self.retain_open();
        }
    }
}

/// A live payload as JSON, rendered the first time someone needs it.
enum Json {
    Point(Arc<Point>),
    Rendered(Bytes),
}

impl Json {
    fn rendered(&mut self, asset_id: &AssetId) -> Bytes {
        match self {
            Json::Rendered(json) => json.clone(),
            Json::Point(point) => {
                // Straight into the bytes the streams share: the text is ours, so it needs
                // no UTF-8 check on the way through a `String`.
                let mut out = Vec::with_capacity(256);
                point.render_json_into(asset_id, &mut out);
                let json = Bytes::from(out);
                *self = Json::Rendered(json.clone());
                json
            }
        }
    }
}

/// Opens a live stream; the returned receiver yields events until it is dropped, or until
/// `allowed` answers false after a change (the stream then ends).
#[derive(Message)]
#[rtype(result = "mpsc::Receiver<LiveEvent>")]
pub struct Subscribe {
    pub only: Option<AssetId>,
    pub allowed: StillAllowed,
    /// Events buffered for this subscriber before it starts dropping (and later hears of
    /// the gap); at least 2, so a gap and the event after it fit. [`SUBSCRIBER_BUFFER`]
    /// unless configured otherwise.
    pub buffer: usize,
}

/// Checks every stream's authority again and ends those whose principal may no longer see
/// what they show (support revoked or expired, token rotated, role gone, grant removed).
/// The sender waits for the answer: once it has it, no ended stream gets another event.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Reauthorize;

impl Handler<Reauthorize> for AccountActor {
    type Result = ();

    fn handle(&mut self, _: Reauthorize, _: &mut Self::Context) {
        self.retain(|subscriber| (subscriber.allowed)());
    }
}

impl Handler<Subscribe> for AccountActor {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) -> Self::Result {
        let (events, receiver) = mpsc::channel(msg.buffer.max(2));
        // Checked again here, in this actor's order: a change committed after the request
        // checked the caller, and whose stream re-check ran before this message, would
        // otherwise leave the stream open. Refused, the sender is dropped: the stream ends.
        if !(msg.allowed)() {
            return MessageResult(receiver);
        }
        self.subscribers.push(Subscriber {
            only: msg.only,
            events,
            allowed: msg.allowed,
            lag: Lag::default(),
        });
        self.shared.metrics.sse_subscribers.inc();
        self.note_streaming();
        MessageResult(receiver)
    }
}

/// Hands a live event to `account`'s actor without waiting; when its mailbox is full the
/// event is shed, counted, and noted for the account's streams to hear of as a gap.
pub(crate) fn offer(
    addr: &Addr<AccountActor>,
    account: &AccountId,
    message: Deliver,
    shared: &Shared,
) {
    let (asset, id) = (message.asset_id.clone(), message.arrival);
    if let Err(actix::prelude::SendError::Full(_)) = addr.try_send(message) {
        shared.metrics.live_shed.inc();
        shared.shed.note(account, &asset, id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_frames_follow_the_wire_format() {
        let event = LiveEvent::Event {
            id: ArrivalId(42),
            event: "point",
            data: Bytes::from_static(b"{\"a\":1}"),
        };
        assert_eq!(
            &event.to_sse()[..],
            b"id: 42\nevent: point\ndata: {\"a\":1}\n\n"
        );
        let gap = LiveEvent::Gap(Gap {
            dropped: 2,
            from_id: ArrivalId(3),
            to_id: ArrivalId(4),
        });
        assert_eq!(
            &gap.to_sse()[..],
            b"event: gap\ndata: {\"dropped\":2,\"from_id\":3,\"to_id\":4}\n\n",
            "a gap has no id: the client's last id stays the one before it"
        );
        assert_eq!(&LiveEvent::KeepAlive.to_sse()[..], b": keep-alive\n\n");
    }
}
