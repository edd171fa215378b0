//! Pairs each publish or subscribe a caller made with the acknowledgement the broker sends
//! back, using only what rumqttc's event loop reports.
//!
//! rumqttc hands out packet ids inside its event loop, so the caller never learns which id
//! its publish got. What it does guarantee: requests leave its channel in the order they were
//! queued, and each one produces exactly one `Outgoing::Publish(pkid)` (or
//! `Outgoing::Subscribe(pkid)`) event, in that same order, before the matching
//! `Incoming::PubAck(pkid)`; an id is reused only after its acknowledgement has been
//! reported. So a FIFO of waiters (filled in request order) turns into a map by packet id
//! (filled as the "sent" events arrive), and the acknowledgement resolves the waiter.
//! This file is plain state with no I/O so that bookkeeping can be tested alone; the
//! caller passes the moment of each event, so the acknowledgement's round trip (from the
//! "sent" event to the acknowledgement) is exact in tests too.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rumqttc::QoS;
use tokio::sync::oneshot;

use super::UnitError;

/// Resolved with `Ok` when the broker acknowledged (QoS 1: PUBACK, QoS 2: PUBCOMP,
/// QoS 0: written to the socket) or with the reason the connection ended first. A QoS 1/2
/// publish's `Ok` carries its round trip: from rumqttc reporting it written to rumqttc
/// reporting its acknowledgement. QoS 0 publishes and subscriptions carry `None`.
pub(crate) type Completion = oneshot::Receiver<Result<Option<Duration>, UnitError>>;
type Resolver = oneshot::Sender<Result<Option<Duration>, UnitError>>;

/// Identifies one queued request so a caller whose hand-over to rumqttc failed can take
/// back exactly its own waiter.
pub(crate) type Ticket = u64;

struct PendingPublish {
    ticket: Ticket,
    qos: QoS,
    resolver: Resolver,
    /// When rumqttc reported it written; `None` while it waits in rumqttc's channel.
    sent_at: Option<Instant>,
}

struct PendingSubscribe {
    ticket: Ticket,
    resolver: Resolver,
}

/// What one `SimUnit` is waiting for. Once failed, it stays failed: a `SimUnit` is one MQTT
/// session and never reconnects, so nothing queued later could be acknowledged.
#[derive(Default)]
pub(crate) struct AckTracker {
    next_ticket: Ticket,
    unsent_publishes: VecDeque<PendingPublish>,
    inflight_publishes: HashMap<u16, PendingPublish>,
    unsent_subscribes: VecDeque<PendingSubscribe>,
    inflight_subscribes: HashMap<u16, PendingSubscribe>,
    failure: Option<UnitError>,
}

/// Which acknowledgement arrived; QoS 1 and QoS 2 end with different packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckKind {
    PubAck,
    PubComp,
}

impl AckTracker {
    pub(crate) fn failure(&self) -> Option<&UnitError> {
        self.failure.as_ref()
    }

    /// Registers a publish about to be handed to rumqttc.
    pub(crate) fn enqueue_publish(&mut self, qos: QoS) -> Result<(Ticket, Completion), UnitError> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        let (resolver, completion) = oneshot::channel();
        let ticket = self.take_ticket();
        self.unsent_publishes.push_back(PendingPublish {
            ticket,
            qos,
            resolver,
            sent_at: None,
        });
        Ok((ticket, completion))
    }

    /// Takes back a publish that never reached rumqttc's channel. Only the newest entry can
    /// be the caller's (hand-overs are serialised), so anything else is left alone.
    pub(crate) fn cancel_publish(&mut self, ticket: Ticket) {
        if self.unsent_publishes.back().map(|pending| pending.ticket) == Some(ticket) {
            self.unsent_publishes.pop_back();
        }
    }

    /// rumqttc wrote a publish with this packet id (0 for QoS 0) at `now`. Returns false
    /// when no caller was waiting, which would mean a publish this tracker did not see.
    pub(crate) fn publish_sent(&mut self, pkid: u16, now: Instant) -> bool {
        let Some(mut pending) = self.unsent_publishes.pop_front() else {
            return false;
        };
        if pending.qos == QoS::AtMostOnce {
            let _ = pending.resolver.send(Ok(None));
        } else {
            pending.sent_at = Some(now);
            self.inflight_publishes.insert(pkid, pending);
        }
        true
    }

    /// The broker acknowledged this packet id at `now`. Returns true when it completed a
    /// publish.
    pub(crate) fn publish_acked(&mut self, pkid: u16, kind: AckKind, now: Instant) -> bool {
        let expected_qos = match kind {
            AckKind::PubAck => QoS::AtLeastOnce,
            AckKind::PubComp => QoS::ExactlyOnce,
        };
        match self.inflight_publishes.remove(&pkid) {
            Some(pending) if pending.qos == expected_qos => {
                let round_trip = pending
                    .sent_at
                    .map(|sent_at| now.saturating_duration_since(sent_at));
                let _ = pending.resolver.send(Ok(round_trip));
                true
            }
            Some(pending) => {
                // A PUBACK for a QoS 2 publish (or the reverse) is a broker bug; keep waiting
                // for the right packet rather than claiming success.
                self.inflight_publishes.insert(pkid, pending);
                false
            }
            None => false,
        }
    }

    pub(crate) fn enqueue_subscribe(&mut self) -> Result<(Ticket, Completion), UnitError> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        let (resolver, completion) = oneshot::channel();
        let ticket = self.take_ticket();
        self.unsent_subscribes
            .push_back(PendingSubscribe { ticket, resolver });
        Ok((ticket, completion))
    }

    pub(crate) fn cancel_subscribe(&mut self, ticket: Ticket) {
        if self.unsent_subscribes.back().map(|pending| pending.ticket) == Some(ticket) {
            self.unsent_subscribes.pop_back();
        }
    }

    pub(crate) fn subscribe_sent(&mut self, pkid: u16) {
        if let Some(pending) = self.unsent_subscribes.pop_front() {
            self.inflight_subscribes.insert(pkid, pending);
        }
    }

    /// The broker answered a subscribe; `refused` when any filter got a failure code.
    pub(crate) fn subscribe_acked(&mut self, pkid: u16, refused: bool) {
        if let Some(pending) = self.inflight_subscribes.remove(&pkid) {
            let outcome = if refused {
                Err(UnitError::SubscribeRefused)
            } else {
                Ok(None)
            };
            let _ = pending.resolver.send(outcome);
        }
    }

    /// The session ended: every waiter learns why, and later requests are refused.
    pub(crate) fn fail(&mut self, error: UnitError) {
        let publishes = self
            .unsent_publishes
            .drain(..)
            .chain(self.inflight_publishes.drain().map(|(_, pending)| pending));
        for pending in publishes {
            let _ = pending.resolver.send(Err(error.clone()));
        }
        let subscribes = self
            .unsent_subscribes
            .drain(..)
            .chain(self.inflight_subscribes.drain().map(|(_, pending)| pending));
        for pending in subscribes {
            let _ = pending.resolver.send(Err(error.clone()));
        }
        self.failure.get_or_insert(error);
    }

    fn take_ticket(&mut self) -> Ticket {
        self.next_ticket += 1;
        self.next_ticket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the completion resolved, and how: `Ok` without its round trip.
    fn outcome(completion: &mut Completion) -> Option<Result<(), UnitError>> {
        completion.try_recv().ok().map(|result| result.map(|_| ()))
    }

    /// A fixed origin and `ms` milliseconds after it, so round trips are exact.
    fn at(origin: Instant, ms: u64) -> Instant {
        origin + Duration::from_millis(ms)
    }

    #[test]
    fn acks_resolve_the_publish_with_that_packet_id() {
        let t0 = Instant::now();
        let mut tracker = AckTracker::default();
        let (_, mut first) = tracker.enqueue_publish(QoS::AtLeastOnce).expect("queue");
        let (_, mut second) = tracker.enqueue_publish(QoS::AtLeastOnce).expect("queue");
        assert!(tracker.publish_sent(1, t0));
        assert!(tracker.publish_sent(2, t0));
        assert!(tracker.publish_acked(2, AckKind::PubAck, t0));
        assert_eq!(outcome(&mut second), Some(Ok(())));
        assert_eq!(outcome(&mut first), None);
        assert!(tracker.publish_acked(1, AckKind::PubAck, t0));
        assert_eq!(outcome(&mut first), Some(Ok(())));
    }

    #[test]
    fn an_ack_carries_the_time_since_its_publish_was_written() {
        let t0 = Instant::now();
        let mut tracker = AckTracker::default();
        let (_, mut first) = tracker.enqueue_publish(QoS::AtLeastOnce).expect("queue");
        let (_, mut second) = tracker.enqueue_publish(QoS::ExactlyOnce).expect("queue");
        tracker.publish_sent(1, at(t0, 10));
        tracker.publish_sent(2, at(t0, 12));
        tracker.publish_acked(1, AckKind::PubAck, at(t0, 35));
        tracker.publish_acked(2, AckKind::PubComp, at(t0, 20));
        let round_trip = |completion: &mut Completion| completion.try_recv().ok();
        assert_eq!(
            round_trip(&mut first),
            Some(Ok(Some(Duration::from_millis(25))))
        );
        assert_eq!(
            round_trip(&mut second),
            Some(Ok(Some(Duration::from_millis(8))))
        );
        // An acknowledgement stamped before its send (clock read out of order) is zero.
        let (_, mut early) = tracker.enqueue_publish(QoS::AtLeastOnce).expect("queue");
        tracker.publish_sent(3, at(t0, 50));
        tracker.publish_acked(3, AckKind::PubAck, at(t0, 40));
        assert_eq!(round_trip(&mut early), Some(Ok(Some(Duration::ZERO))));
    }

    #[test]
    fn packet_ids_may_be_reused_after_their_ack() {
        let t0 = Instant::now();
        let mut tracker = AckTracker::default();
        let (_, mut first) = tracker.enqueue_publish(QoS::AtLeastOnce).expect("queue");
        let (_, mut second) = tracker.enqueue_publish(QoS::AtLeastOnce).expect("queue");
        tracker.publish_sent(1, t0);
        tracker.publish_acked(1, AckKind::PubAck, t0);
        tracker.publish_sent(1, t0);
        assert_eq!(outcome(&mut first), Some(Ok(())));
        assert_eq!(outcome(&mut second), None);
        tracker.publish_acked(1, AckKind::PubAck, t0);
        assert_eq!(outcome(&mut second), Some(Ok(())));
    }

    #[test]
    fn qos0_completes_when_written_without_a_round_trip() {
        let mut tracker = AckTracker::default();
        let (_, mut completion) = tracker.enqueue_publish(QoS::AtMostOnce).expect("queue");
        tracker.publish_sent(0, Instant::now());
        assert_eq!(completion.try_recv().ok(), Some(Ok(None)));
    }

    #[test]
    fn unknown_or_mismatched_acks_change_nothing() {
        let t0 = Instant::now();
        let mut tracker = AckTracker::default();
        assert!(!tracker.publish_acked(9, AckKind::PubAck, t0));
        assert!(!tracker.publish_sent(3, t0));
        let (_, mut completion) = tracker.enqueue_publish(QoS::ExactlyOnce).expect("queue");
        tracker.publish_sent(4, t0);
        assert!(!tracker.publish_acked(4, AckKind::PubAck, t0));
        assert_eq!(outcome(&mut completion), None);
        assert!(tracker.publish_acked(4, AckKind::PubComp, t0));
        assert_eq!(outcome(&mut completion), Some(Ok(())));
    }

    #[test]
    fn cancel_only_takes_back_the_newest_entry() {
        let t0 = Instant::now();
        let mut tracker = AckTracker::default();
        let (older, mut kept) = tracker.enqueue_publish(QoS::AtLeastOnce).expect("queue");
        let (newer, _) = tracker.enqueue_publish(QoS::AtLeastOnce).expect("queue");
        tracker.cancel_publish(older);
        tracker.cancel_publish(newer);
        tracker.publish_sent(1, t0);
        tracker.publish_acked(1, AckKind::PubAck, t0);
        assert_eq!(outcome(&mut kept), Some(Ok(())));
    }

    #[test]
    fn failure_resolves_everyone_and_refuses_later_requests() {
        let t0 = Instant::now();
        let mut tracker = AckTracker::default();
        let (_, mut unsent) = tracker.enqueue_publish(QoS::AtLeastOnce).expect("queue");
        let (_, mut inflight) = tracker.enqueue_publish(QoS::AtLeastOnce).expect("queue");
        let (_, mut subscribe) = tracker.enqueue_subscribe().expect("queue");
        tracker.publish_sent(1, t0);
        let _ = tracker.publish_sent(2, t0);
        tracker.fail(UnitError::Closed);
        assert_eq!(outcome(&mut unsent), Some(Err(UnitError::Closed)));
        assert_eq!(outcome(&mut inflight), Some(Err(UnitError::Closed)));
        assert_eq!(outcome(&mut subscribe), Some(Err(UnitError::Closed)));
        assert!(tracker.enqueue_publish(QoS::AtLeastOnce).is_err());
    }

    #[test]
    fn refused_subscription_is_reported() {
        let mut tracker = AckTracker::default();
        let (_, mut completion) = tracker.enqueue_subscribe().expect("queue");
        tracker.subscribe_sent(5);
        tracker.subscribe_acked(5, true);
        assert_eq!(
            outcome(&mut completion),
            Some(Err(UnitError::SubscribeRefused))
        );
    }
}
