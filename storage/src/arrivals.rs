//! The arrival index: every telemetry point and access event the gateway accepted, under a
//! gateway-wide arrival id that rises in the order they were accepted.
//!
//! Live streams write that id as each event's SSE `id:`, and a client that reconnects with
//! `Last-Event-ID` is replayed what arrived after it from here (see [`crate::resume`]).
//! Timestamps cannot serve: `/v1/stream` spans assets, and units send old points late.
//!
//! Entries are written by the store writer in the same group commit as the point or event
//! they name, and pruned by it in bounded batches once older than [`RETENTION_MS`]
//! (measured on the gateway clock at arrival, not on the point's `ts`).

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, WriteTransaction};

use crate::error::StoreError;
use crate::tables::{ARRIVALS, COUNTERS};
use crate::time::Timestamp;

/// How long the index keeps an arrival, in milliseconds of gateway time: 24 hours. A
/// client may resume from any id accepted within it.
pub const RETENTION_MS: u64 = 24 * 3600 * 1000;

/// The most entries one commit prunes beyond the ones it adds, so pruning a large backlog
/// (after a long quiet spell) never makes one commit slow.
pub const PRUNE_PER_COMMIT: usize = 4096;

/// The named counter holding the highest arrival id pruned so far (0: none).
const PRUNED_THROUGH: &str = "arrivals_pruned_through";

/// A gateway-wide arrival id (see the module docs). Ids are never reused, across restarts
/// too, but need not be contiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArrivalId(pub u64);

impl std::fmt::Display for ArrivalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What arrived: where its record is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrived {
    /// A telemetry point, stored under `(asset_key, ts)` in [`crate::tables::TELEMETRY`],
    /// as the `reading`-th reading of that millisecond (see `crate::telemetry::row`; the
    /// store writer sets it when it writes the point).
    Point {
        asset_key: u64,
        ts: Timestamp,
        reading: u32,
    },
    /// A telemetry mirror's view of a point (design 5.4): the point as the mirror's account
    /// sees it under the mirror asset `mirror_key`, with an id of its own, so an account
    /// that sees one unit under several asset ids gets each as its own event. The point is
    /// the `reading`-th of `ts` of the mirror's source.
    View {
        mirror_key: u64,
        ts: Timestamp,
        reading: u32,
    },
    /// An access event, stored under `(asset_key, ts, seq)` in
    /// [`crate::tables::ACCESS_EVENTS`].
    Access {
        asset_key: u64,
        ts: Timestamp,
        seq: u64,
    },
}

impl Arrived {
    /// The asset this entry is of (its internal key): the point's or the access event's,
    /// or, for a mirror's view, the mirror's.
    pub fn asset_key(&self) -> u64 {
        match self {
            Arrived::Point { asset_key, .. } | Arrived::Access { asset_key, .. } => *asset_key,
            Arrived::View { mirror_key, .. } => *mirror_key,
        }
    }
}

/// One entry of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub id: ArrivalId,
    pub what: Arrived,
    /// When the gateway accepted it (gateway clock, ms); what retention is measured on.
    pub at: Timestamp,
}

/// The stored value: (kind, asset key, ts ms, access sequence, arrived at ms).
type Row = (u8, u64, u64, u64, u64);
const KIND_POINT: u8 = 0;
const KIND_ACCESS: u8 = 1;
const KIND_VIEW: u8 = 2;

fn to_row(arrival: &Arrival) -> Row {
    match arrival.what {
        Arrived::Point {
            asset_key,
            ts,
            reading,
        } => (
            KIND_POINT,
            asset_key,
            ts.0,
            u64::from(reading),
            arrival.at.0,
        ),
        Arrived::View {
            mirror_key,
            ts,
            reading,
        } => (
            KIND_VIEW,
            mirror_key,
            ts.0,
            u64::from(reading),
            arrival.at.0,
        ),
        Arrived::Access { asset_key, ts, seq } => (KIND_ACCESS, asset_key, ts.0, seq, arrival.at.0),
    }
}

fn from_row(id: u64, (kind, asset_key, ts, seq, at): Row) -> Arrival {
    let reading = u32::try_from(seq).unwrap_or(u32::MAX);
    let ts = Timestamp(ts);
    let what = match kind {
        KIND_ACCESS => Arrived::Access { asset_key, ts, seq },
        KIND_VIEW => Arrived::View {
            mirror_key: asset_key,
            ts,
            reading,
        },
        _ => Arrived::Point {
            asset_key,
            ts,
            reading,
        },
    };
    Arrival {
        id: ArrivalId(id),
        what,
        at: Timestamp(at),
    }
}

/// Adds entries to the index, and prunes what the newest of them puts past retention (at
/// most as many as were added plus [`PRUNE_PER_COMMIT`]). One insert per entry.
pub fn record<'a>(
    tx: &WriteTransaction,
    arrivals: impl IntoIterator<Item = &'a Arrival>,
) -> Result<(), StoreError> {
    let mut added = 0;
    let mut newest = None;
    {
        let mut table = tx.open_table(ARRIVALS)?;
        for arrival in arrivals {
            table.insert(arrival.id.0, to_row(arrival))?;
            newest = newest.max(Some(arrival.at));
            added += 1;
        }
    }
    if let Some(newest) = newest {
        prune(tx, newest, added + PRUNE_PER_COMMIT)?;
    }
    Ok(())
}

/// Removes, oldest first, up to `max` entries that arrived more than [`RETENTION_MS`]
/// before `now`, and remembers the highest id removed. Returns how many it removed.
pub fn prune(tx: &WriteTransaction, now: Timestamp, max: usize) -> Result<usize, StoreError> {
    let horizon = now.0.saturating_sub(RETENTION_MS);
    let mut table = tx.open_table(ARRIVALS)?;
    let mut removed = 0;
    let mut highest = None;
    while removed < max {
        let first = table.first()?.map(|(id, row)| (id.value(), row.value().4));
        let Some((id, at)) = first else {
            break;
        };
        if at >= horizon {
            break;
        }
        table.remove(id)?;
        highest = Some(id);
        removed += 1;
    }
    if let Some(highest) = highest {
        let mut counters = tx.open_table(COUNTERS)?;
        let before = counters.get(PRUNED_THROUGH)?.map_or(0, |v| v.value());
        counters.insert(PRUNED_THROUGH, before.max(highest))?;
    }
    Ok(removed)
}

/// What the index holds right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bounds {
    /// The oldest id still kept.
    pub oldest: Option<ArrivalId>,
    /// The newest id stored.
    pub newest: Option<ArrivalId>,
    /// Every id up to this one was pruned (0: nothing was).
    pub pruned_through: u64,
    /// How many entries it holds.
    pub len: u64,
}

pub fn bounds(rtx: &ReadTransaction) -> Result<Bounds, StoreError> {
    let table = rtx.open_table(ARRIVALS)?;
    let counters = rtx.open_table(COUNTERS)?;
    let oldest = table.first()?.map(|(id, _)| ArrivalId(id.value()));
    let newest = table.last()?.map(|(id, _)| ArrivalId(id.value()));
    let pruned_through = counters.get(PRUNED_THROUGH)?.map_or(0, |v| v.value());
    Ok(Bounds {
        oldest,
        newest,
        pruned_through,
        len: table.len()?,
    })
}

/// Up to `limit` entries with an id above `after`, lowest first.
pub fn after(
    rtx: &ReadTransaction,
    after: ArrivalId,
    limit: usize,
) -> Result<Vec<Arrival>, StoreError> {
    let table = rtx.open_table(ARRIVALS)?;
    let mut out = Vec::new();
    let Some(start) = after.0.checked_add(1) else {
        return Ok(out);
    };
    for row in table.range(start..)?.take(limit) {
        let (id, value) = row?;
        out.push(from_row(id.value(), value.value()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(id: u64, at: u64) -> Arrival {
        Arrival {
            id: ArrivalId(id),
            what: Arrived::Point {
                asset_key: 7,
                ts: Timestamp(at - 5),
                reading: (id % 3) as u32,
            },
            at: Timestamp(at),
        }
    }

    #[test]
    fn entries_round_trip_and_read_in_id_order() {
        let dir = tempfile::tempdir().expect("dir");
        let store = crate::Store::open(&dir.path().join("db")).expect("store");
        let access = Arrival {
            id: ArrivalId(3),
            what: Arrived::Access {
                asset_key: 9,
                ts: Timestamp(40),
                seq: 41,
            },
            at: Timestamp(50),
        };
        let tx = store.begin_write().expect("tx");
        record(&tx, &[point(5, 60), access, point(4, 55)]).expect("recorded");
        tx.commit().expect("commit");
        let rtx = store.begin_read().expect("read");
        let read = after(&rtx, ArrivalId(3), 10).expect("read");
        assert_eq!(read, vec![point(4, 55), point(5, 60)]);
        assert_eq!(after(&rtx, ArrivalId(0), 1).expect("read"), vec![access]);
        assert!(after(&rtx, ArrivalId(u64::MAX), 1)
            .expect("read")
            .is_empty());
    }

    #[test]
    fn a_mirrors_view_round_trips_as_its_own_entry() {
        let dir = tempfile::tempdir().expect("dir");
        let store = crate::Store::open(&dir.path().join("db")).expect("store");
        let view = Arrival {
            id: ArrivalId(6),
            what: Arrived::View {
                mirror_key: 12,
                ts: Timestamp(55),
                reading: 1,
            },
            at: Timestamp(60),
        };
        let tx = store.begin_write().expect("tx");
        record(&tx, &[point(5, 60), view]).expect("recorded");
        tx.commit().expect("commit");
        let rtx = store.begin_read().expect("read");
        assert_eq!(
            after(&rtx, ArrivalId(4), 10).expect("read"),
            vec![point(5, 60), view]
        );
        assert_eq!(view.what.asset_key(), 12);
    }

    #[test]
    fn pruning_removes_what_is_past_retention_in_bounded_batches() {
        let dir = tempfile::tempdir().expect("dir");
        let store = crate::Store::open(&dir.path().join("db")).expect("store");
        let tx = store.begin_write().expect("tx");
        let old: Vec<_> = (1..=10).map(|id| point(id, 1_000 + id)).collect();
        record(&tx, &old).expect("recorded");
        tx.commit().expect("commit");
        let later = 1_000 + 10 + RETENTION_MS + 1;
        let tx = store.begin_write().expect("tx");
        assert_eq!(prune(&tx, Timestamp(later), 4).expect("pruned"), 4);
        tx.commit().expect("commit");
        let bounds_now = bounds(&store.begin_read().expect("read")).expect("bounds");
        assert_eq!(bounds_now.oldest, Some(ArrivalId(5)));
        assert_eq!(bounds_now.pruned_through, 4);
        // A new arrival prunes what it puts past retention, and keeps what it does not.
        let tx = store.begin_write().expect("tx");
        record(&tx, &[point(11, 1_000 + 9 + RETENTION_MS)]).expect("recorded");
        tx.commit().expect("commit");
        let bounds_now = bounds(&store.begin_read().expect("read")).expect("bounds");
        assert_eq!(bounds_now.oldest, Some(ArrivalId(9)));
        assert_eq!(bounds_now.pruned_through, 8);
        assert_eq!(bounds_now.newest, Some(ArrivalId(11)));
        assert_eq!(bounds_now.len, 3);
    }
}
