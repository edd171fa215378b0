//! The arrival order: one gateway-wide sequence of ids for the points and access events
//! the device actors accept (see `storage::arrivals`).
//!
//! A device actor takes an id, queues the record at the store writer and offers the live
//! event to its accounts, all while holding the [`Order`]. So:
//! - every account actor receives live events in rising id order, across all units, and
//!   a stream's ids rise strictly: a client's `Last-Event-ID` is the newest it saw, and
//!   everything after it is after it in the index too;
//! - the writer receives the records in id order and commits them in that order, so an
//!   index read sees a prefix of the ids (up to what is committed);
//! - the writer's job is queued before any account hears of the event: an account actor
//!   that handled the event before a stream subscribed implies the record is queued
//!   before the writer flush that stream's resume waits for.
//!
//! The lock is held for an id increment, a channel send and one mailbox offer per viewer,
//! none of which waits.

use std::sync::{Mutex, MutexGuard};

use storage::arrivals::ArrivalId;
use storage::time::Timestamp;

/// How far ids jump past the highest stored one when the gateway starts. Ids handed out
/// but not committed before a crash (a writer batch and its queue, far fewer than this) may
/// have reached clients; they are never handed out again.
pub const RESTART_MARGIN: u64 = 1_000_000;

/// The gateway's arrival sequence. Shared by every device actor through `Context`.
#[derive(Debug)]
pub struct Arrivals {
    /// The next id to hand out. Held (through [`Order`]) while an arrival is taken, queued
    /// and offered, which is what keeps ids, commits and deliveries in one order.
    next: Mutex<u64>,
}

/// An arrival's id and when the gateway accepted it (gateway clock), as the writer records
/// it in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub id: ArrivalId,
    pub at: Timestamp,
}

impl Stamp {
    /// The index entry for `what`, arrived with this stamp.
    pub fn entry(self, what: storage::arrivals::Arrived) -> storage::arrivals::Arrival {
        storage::arrivals::Arrival {
            id: self.id,
            what,
            at: self.at,
        }
    }
}

impl Arrivals {
    /// A sequence that continues after `highest_stored` (the index's newest id), past
    /// [`RESTART_MARGIN`]; the first id of an empty store is 1.
    pub fn starting_after(highest_stored: Option<ArrivalId>) -> Arrivals {
        let next = highest_stored.map_or(1, |id| id.0.saturating_add(RESTART_MARGIN));
        Arrivals {
            next: Mutex::new(next),
        }
    }

    /// Reads where to continue from the store.
    pub fn from_store(store: &storage::Store) -> Result<Arrivals, storage::StoreError> {
        let bounds = storage::arrivals::bounds(&store.begin_read()?)?;
        Ok(Arrivals::starting_after(bounds.newest))
    }

    /// Holds the arrival order until the returned guard is dropped.
    pub fn order(&self) -> Order<'_> {
        Order {
            next: self
                .next
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }

    /// The highest id handed out so far (or just below the first one to come): a client's
    /// id above it was never ours.
    pub fn issued(&self) -> ArrivalId {
        ArrivalId(self.order().next.saturating_sub(1))
    }
}

/// The arrival order, held: see the module docs for what must happen while it is.
#[derive(Debug)]
pub struct Order<'a> {
    next: MutexGuard<'a, u64>,
}

impl Order<'_> {
    /// The next arrival id, stamped with `now`.
    pub fn take(&mut self, now: Timestamp) -> Stamp {
        self.take_span(now, 1)
    }

    /// The next arrival id, stamped with `now`, and the `width - 1` ids after it, which no
    /// other arrival gets: the ids of a point's mirrors' views, each its own event and
    /// index entry (design 5.4). A width of 0 counts as 1.
    pub fn take_span(&mut self, now: Timestamp, width: u32) -> Stamp {
        let id = ArrivalId(*self.next);
        *self.next = self.next.saturating_add(u64::from(width.max(1)));
        Stamp { id, at: now }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_rise_and_continue_past_the_margin_after_a_restart() {
        let fresh = Arrivals::starting_after(None);
        assert_eq!(fresh.issued(), ArrivalId(0));
        let first = fresh.order().take(Timestamp(5));
        let second = fresh.order().take(Timestamp(5));
        assert_eq!((first.id, second.id), (ArrivalId(1), ArrivalId(2)));
        assert_eq!(fresh.issued(), ArrivalId(2));
        let restarted = Arrivals::starting_after(Some(ArrivalId(2)));
        assert_eq!(
            restarted.order().take(Timestamp(6)).id.0,
            2 + RESTART_MARGIN
        );
    }

    #[test]
    fn a_span_keeps_its_ids_from_every_other_arrival() {
        let arrivals = Arrivals::starting_after(None);
        let wide = arrivals.order().take_span(Timestamp(1), 3);
        let next = arrivals.order().take(Timestamp(1));
        assert_eq!((wide.id, next.id), (ArrivalId(1), ArrivalId(4)));
        assert_eq!(arrivals.issued(), ArrivalId(4));
        let zero = arrivals.order().take_span(Timestamp(1), 0);
        assert_eq!(zero.id, ArrivalId(5));
        assert_eq!(arrivals.issued(), ArrivalId(5));
    }
}
