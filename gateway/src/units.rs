//! The wiring between the MQTT transport and the actors, in both directions:
//! [`ActorBackend`] is the transport's [`Backend`] (sessions to `DeviceActor`s) and
//! [`SessionsOut`] is the actors' [`MqttOut`] (key sets and live points to sessions).
//!
//! Every call into an actor from here is `send().await`: a busy actor pushes back on the
//! session that calls it, never queues without bound.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use actors::device::{Channel, Inbound, SessionClosed, SessionOpened};
use actors::directory::Directory;
use actors::{MqttOut, Outcome};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use storage::{AccountId, AssetId, DeviceId, Store};

use crate::transport::{
    self, AckReason, Backend, CloseReason, Denied, Identified, Peer, Role, TransportHandle,
    UnitMessage, UnitTopic, Verdict,
};

mod deliverable;

type DeviceAddr = actix::Addr<actors::device::DeviceActor>;

/// The transport's view of the gateway.
#[derive(Debug)]
pub struct ActorBackend {
    pub directory: Arc<Directory>,
    pub store: Store,
    pub clock: Arc<dyn storage::time::Clock>,
}

fn channel(topic: UnitTopic) -> Channel {
    match topic {
        UnitTopic::Telemetry => Channel::Telemetry,
        UnitTopic::Status => Channel::Status,
        UnitTopic::KeyAck => Channel::KeyAck,
        UnitTopic::AccessEvent => Channel::AccessEvent,
    }
}

/// The MQTT 5 reason a refusal is acknowledged with (MQTT 5 §3.4.2.1).
pub fn ack_reason(label: &str) -> AckReason {
    match label {
        "deregistered" | "unbound_device" => AckReason::NotAuthorized,
        "key_ack_unknown_version" => AckReason::NotAuthorized,
        _ => AckReason::PayloadFormatInvalid,
    }
}

impl ActorBackend {
    /// The unit's actor, found when its session opened (see [`Backend::identify`]).
    /// Borrowed from the session when it can be: the publish path uses it for every point.
    fn device<'p>(&self, peer: &'p Peer) -> Option<Cow<'p, DeviceAddr>> {
        if peer.role != Role::Unit {
            return None;
        }
        match peer
            .link
            .as_ref()
            .and_then(|link| link.downcast_ref::<DeviceAddr>())
        {
            Some(addr) => Some(Cow::Borrowed(addr)),
            None => Some(Cow::Owned(
                self.directory
                    .device(&DeviceId::parse(&peer.tenant).ok()?)?,
            )),
        }
    }
}

impl Backend for ActorBackend {
    fn identify(&self, tenant: &str) -> Option<Identified> {
        let rtx = self.store.begin_read().ok()?;
        if let Ok(id) = DeviceId::parse(tenant) {
            if let Some(device) = storage::read::device(&rtx, &id).ok().flatten() {
                // A deregistered unit has no session, also on the development listener.
                if device.deregistered_at.is_some() {
                    return None;
                }
                let addr = self.directory.device(&id)?;
                return Some(Identified {
                    role: Role::Unit,
                    link: Some(Arc::new(addr)),
                });
            }
        }
        let account = AccountId::parse(tenant).ok()?;
        storage::read::account(&rtx, &account)
            .ok()
            .flatten()
            .map(|_| Identified {
                role: Role::Integration,
                link: None,
            })
    }

    fn opened(&self, peer: &Peer, took_over: bool) -> BoxFuture<'static, ()> {
        let Some(actor) = self.device(peer).map(Cow::into_owned) else {
            return async {}.boxed();
        };
        let message = SessionOpened {
            session: peer.session,
            took_over,
        };
        async move {
            let _ = actor.send(message).await;
        }
        .boxed()
    }

    fn closed(&self, peer: &Peer, reason: &CloseReason) -> BoxFuture<'static, ()> {
        let Some(actor) = self.device(peer).map(Cow::into_owned) else {
            return async {}.boxed();
        };
        let message = SessionClosed {
            session: peer.session,
            reason: reason.to_string(),
        };
        async move {
            let _ = actor.send(message).await;
        }
        .boxed()
    }

    fn publish(&self, peer: &Peer, message: UnitMessage) -> BoxFuture<'static, Verdict> {
        let Some(actor) = self.device(peer) else {
            // Its actor is gone (deregistered in the meantime): refused for good.
            return async { Verdict::Refused(AckReason::NotAuthorized, "unknown_device") }.boxed();
        };
        let (done, outcome) = tokio::sync::oneshot::channel();
        let inbound = Inbound {
            channel: channel(message.topic),
            payload: message.payload,
            packet_id: message.packet_id,
            dup: message.dup,
            done: Some(done),
        };
        // Without waiting when the unit's mailbox has room (the usual case: a session has
        // at most its receive maximum in flight); waiting when it is full.
        let waiting = match actor.try_send(inbound) {
            Ok(()) => None,
            Err(actix::prelude::SendError::Full(inbound)) => Some(actor.into_owned().send(inbound)),
            Err(actix::prelude::SendError::Closed(_)) => {
                return async { Verdict::NotStored }.boxed()
            }
        };
        async move {
            if let Some(waiting) = waiting {
                if waiting.await.is_err() {
                    return Verdict::NotStored;
                }
            }
            match outcome.await {
                Ok(Outcome::Accepted) => Verdict::Accepted,
                Ok(Outcome::Refused(label)) => Verdict::Refused(ack_reason(label), label),
                Ok(Outcome::NotStored) | Err(_) => Verdict::NotStored,
            }
        }
        .boxed()
    }

    fn denied(&self, peer: &Peer, denied: Denied, topic: &str) {
        if let Some(actor) = self.device(peer) {
            // Status bookkeeping only; if the mailbox is full the count still stands.
            let _ = actor.try_send(actors::device::Denied {
                reason: denied.label(),
                detail: format!("{topic:?} is not a topic this unit may use"),
            });
        }
    }

    fn unreadable(&self, peer: &Peer, reason: &'static str, detail: String) {
        if let Some(actor) = self.device(peer) {
            // Counted and named by the actor; if its mailbox is full the refusal still stands.
            let _ = actor.try_send(actors::device::Unreadable { reason, detail });
        }
    }

    fn retain_deliverable(&self, tenant: &str, queue: &mut VecDeque<(Arc<str>, Bytes)>) {
        if queue.is_empty() {
            return;
        }
        let still = deliverable::Still::new(&self.store, tenant, self.clock.now());
        queue.retain(|(topic, payload)| still.sees(topic, payload));
    }

    fn key_set(&self, peer: &Peer) -> BoxFuture<'static, Option<Bytes>> {
        let Some(actor) = self.device(peer).map(Cow::into_owned) else {
            return async { None }.boxed();
        };
        async move { actor.send(actors::keys::GetKeySet).await.ok().flatten() }.boxed()
    }
}

/// The actors' output to live sessions, connected once the transport is up (nothing is
/// connected before, so nothing is lost).
#[derive(Debug, Default)]
pub struct SessionsOut {
    transport: OnceLock<TransportHandle>,
}

impl SessionsOut {
    pub fn connect(&self, handle: TransportHandle) {
        let _ = self.transport.set(handle);
    }
}

impl MqttOut for SessionsOut {
    fn push_keys(&self, device: &DeviceId, payload: Bytes) {
        if let Some(transport) = self.transport.get() {
            transport.push_keys(device.as_str(), payload);
        }
    }

    fn listening(&self, account: &AccountId) -> bool {
        self.transport
            .get()
            .is_some_and(|transport| transport.listening(account.as_str()))
    }

    fn access_changed(&self) {
        if let Some(transport) = self.transport.get() {
            transport.access_changed();
        }
    }

    fn deliver(&self, account: &AccountId, asset: &AssetId, payload: Bytes) {
        if let Some(transport) = self.transport.get() {
            let topic: Arc<str> = Arc::from(transport::acl::asset_topic(
                account.as_str(),
                asset.as_str(),
            ));
            transport.deliver(account.as_str(), &topic, payload);
        }
    }
}

/// The use cases close and refuse sessions through the transport; before it is connected
/// (during start) there is no session to close.
impl actors::usecases::SessionControl for SessionsOut {
    fn close(&self, tenant: &str) -> actors::usecases::Closing {
        let (transport, tenant) = (self.transport.get().cloned(), tenant.to_owned());
        Box::pin(async move {
            if let Some(transport) = transport {
                transport.close(&tenant).await;
            }
        })
    }

    fn revoke_issued_before(
        &self,
        tenant: String,
        before: storage::time::Timestamp,
    ) -> actors::usecases::Closing {
        let transport = self.transport.get().cloned();
        Box::pin(async move {
            if let Some(transport) = transport {
                transport.revoke_issued_before(&tenant, before.0).await;
            }
        })
    }

    fn revoke(&self, serials: Vec<String>) -> actors::usecases::Closing {
        let transport = self.transport.get().cloned();
        Box::pin(async move {
            if let Some(transport) = transport {
                transport.revoke(&serials).await;
            }
        })
    }
}
