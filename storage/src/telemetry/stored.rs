//! An asset's stored telemetry as one ordered sequence: the rows the writer inserts
//! ([`TELEMETRY`], one per millisecond) merged with the sealed chunks ([`TELEMETRY_CHUNKS`],
//! one per ten-minute bucket) by `ts`.
//!
//! Every reader goes through here (history, latest, exports, resumed streams, the writer's
//! own check for a reading it already holds), so a point reads the same before and after
//! its bucket is sealed. A millisecond may have readings in both places (a late reading of
//! a sealed bucket waits in a row for the next seal): the chunk's come first, as they
//! arrived first.

use std::cmp::Ordering;
use std::collections::VecDeque;

use redb::{AccessGuard, ReadTransaction, ReadableTable, StorageError};

use super::chunk::{self, bucket};
use super::{row, Point};
use crate::error::StoreError;
use crate::tables::{TELEMETRY, TELEMETRY_CHUNKS};

/// The readings of one millisecond, oldest first.
pub type Readings = (u64, Vec<Point>);

type Table = redb::ReadOnlyTable<(u64, u64), &'static [u8]>;
type Entry<'a> =
    Result<(AccessGuard<'a, (u64, u64)>, AccessGuard<'a, &'static [u8]>), StorageError>;

/// Which way a walk goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Oldest,
    Newest,
}

/// Both telemetry tables of one read transaction.
pub struct Stored {
    rows: Table,
    chunks: Table,
    /// The chunks [`Stored::at`] decoded last, newest last: a resumed stream replays
    /// events in arrival order, so it reads the same few chunks again and again.
    recent: std::cell::RefCell<VecDeque<(ChunkKey, Decoded)>>,
}

/// A chunk's key: (asset key, bucket start ms).
type ChunkKey = (u64, u64);
/// A decoded chunk, shared by the readers of one transaction.
type Decoded = std::rc::Rc<Vec<Point>>;

/// How many decoded chunks [`Stored::at`] keeps (about 600 points each at 1 Hz).
const RECENT_CHUNKS: usize = 16;

impl Stored {
    /// # Errors
    /// [`StoreError`] when redb cannot open the tables.
    pub fn open(rtx: &ReadTransaction) -> Result<Stored, StoreError> {
        Ok(Stored {
            rows: rtx.open_table(TELEMETRY)?,
            chunks: rtx.open_table(TELEMETRY_CHUNKS)?,
            recent: Default::default(),
        })
    }

    /// Hands `visit` each millisecond of `asset_key` with `from <= ts < to` that holds a
    /// reading, in `order`, until it answers `false`.
    ///
    /// # Errors
    /// [`StoreError`] when redb fails, a record does not decode, or `visit` fails.
    pub fn walk(
        &self,
        asset_key: u64,
        (from, to): (u64, u64),
        order: Order,
        mut visit: impl FnMut(Readings) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        if from >= to {
            return Ok(());
        }
        let rows = self.rows.range((asset_key, from)..(asset_key, to))?;
        let chunks = self
            .chunks
            .range((asset_key, bucket(from))..(asset_key, to))?;
        let newest = order == Order::Newest;
        let (mut rows, mut chunks): (
            Box<dyn Iterator<Item = Entry>>,
            Box<dyn Iterator<Item = Entry>>,
        ) = match newest {
            true => (Box::new(rows.rev()), Box::new(chunks.rev())),
            false => (Box::new(rows), Box::new(chunks)),
        };
        let mut sealed = Sealed {
            pending: VecDeque::new(),
            span: (from, to),
            newest,
        };
        let mut next_row = next_row_of(&mut rows)?;
        let mut next_sealed = sealed.next(&mut chunks)?;
        loop {
            let ordering = match (&next_sealed, &next_row) {
                (None, None) => return Ok(()),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((a, _)), Some((b, _))) if newest => b.cmp(a),
                (Some((a, _)), Some((b, _))) => a.cmp(b),
            };
            let readings = match ordering {
                Ordering::Less => std::mem::replace(&mut next_sealed, sealed.next(&mut chunks)?),
                Ordering::Greater => std::mem::replace(&mut next_row, next_row_of(&mut rows)?),
                Ordering::Equal => {
                    let (ts, mut both) = next_sealed.take().unwrap_or_default();
                    let (_, late) = next_row.take().unwrap_or_default();
                    append_new(&mut both, late);
                    next_sealed = sealed.next(&mut chunks)?;
                    next_row = next_row_of(&mut rows)?;
                    Some((ts, both))
                }
            };
            if let Some(readings) = readings {
                if !visit(readings)? {
                    return Ok(());
                }
            }
        }
    }

    /// Every reading of `asset_key` at `ts`, oldest first (empty when none is stored).
    ///
    /// # Errors
    /// [`StoreError`] when redb fails or a record does not decode.
    pub fn at(&self, asset_key: u64, ts: u64) -> Result<Vec<Point>, StoreError> {
        let mut readings = match self.chunk(asset_key, bucket(ts))? {
            Some(points) => readings_at(&points, ts),
            None => Vec::new(),
        };
        if let Some(stored) = self.rows.get((asset_key, ts))? {
            append_new(&mut readings, row::decode_stored(stored.value())?);
        }
        Ok(readings)
    }

    /// The decoded chunk of `asset_key` starting at `start`, from the recent ones if there.
    fn chunk(&self, asset_key: u64, start: u64) -> Result<Option<Decoded>, StoreError> {
        let key: ChunkKey = (asset_key, start);
        if let Some((_, points)) = self.recent.borrow().iter().find(|(k, _)| *k == key) {
            return Ok(Some(points.clone()));
        }
        let Some(stored) = self.chunks.get(key)? else {
            return Ok(None);
        };
        let points = std::rc::Rc::new(decode_chunk(start, stored.value())?);
        let mut recent = self.recent.borrow_mut();
        if recent.len() == RECENT_CHUNKS {
            recent.pop_front();
        }
        recent.push_back((key, points.clone()));
        Ok(Some(points))
    }
}

/// The readings of `asset_key` at `ts` that a sealed chunk in `chunks` holds, oldest first.
///
/// # Errors
/// [`StoreError`] when redb fails or the chunk does not decode.
pub fn sealed_at(
    chunks: &impl ReadableTable<(u64, u64), &'static [u8]>,
    asset_key: u64,
    ts: u64,
) -> Result<Vec<Point>, StoreError> {
    let start = bucket(ts);
    let Some(stored) = chunks.get((asset_key, start))? else {
        return Ok(Vec::new());
    };
    Ok(readings_at(&decode_chunk(start, stored.value())?, ts))
}

/// The readings of a decoded chunk stamped `ts`, in stored order.
fn readings_at(points: &[Point], ts: u64) -> Vec<Point> {
    points
        .iter()
        .filter(|point| point.ts.0 == ts)
        .cloned()
        .collect()
}

/// Adds the readings of `late` that `readings` does not hold already, in their order.
pub fn append_new(readings: &mut Vec<Point>, late: Vec<Point>) {
    for reading in late {
        if !readings.contains(&reading) {
            readings.push(reading);
        }
    }
}

/// A chunk record of the bucket starting at `start`, its failure named by its table.
///
/// # Errors
/// [`StoreError::Codec`] when the record does not decode.
pub fn decode_chunk(start: u64, bytes: &[u8]) -> Result<Vec<Point>, StoreError> {
    decode_chunk_for(start, bytes, (0, u64::MAX))
}

/// [`decode_chunk`] for a reader of `[from, to)` only (see [`chunk::decode_for`]).
fn decode_chunk_for(start: u64, bytes: &[u8], span: (u64, u64)) -> Result<Vec<Point>, StoreError> {
    chunk::decode_for(start, bytes, span).map_err(|source| StoreError::Codec {
        table: "telemetry_chunks",
        source,
    })
}

fn next_row_of(rows: &mut dyn Iterator<Item = Entry>) -> Result<Option<Readings>, StoreError> {
    let Some(entry) = rows.next() else {
        return Ok(None);
    };
    let (key, value) = entry?;
    Ok(Some((key.value().1, row::decode_stored(value.value())?)))
}

/// The sealed side of a walk: chunks decoded one at a time into their milliseconds.
struct Sealed {
    pending: VecDeque<Readings>,
    span: (u64, u64),
    newest: bool,
}

impl Sealed {
    fn next(
        &mut self,
        chunks: &mut dyn Iterator<Item = Entry>,
    ) -> Result<Option<Readings>, StoreError> {
        loop {
            let next = match self.newest {
                true => self.pending.pop_back(),
                false => self.pending.pop_front(),
            };
            if next.is_some() {
                return Ok(next);
            }
            let Some(entry) = chunks.next() else {
                return Ok(None);
            };
            let (key, value) = entry?;
            let (from, to) = self.span;
            for point in decode_chunk_for(key.value().1, value.value(), self.span)? {
                let ts = point.ts.0;
                if ts < from || ts >= to {
                    continue;
                }
                match self.pending.back_mut() {
                    Some((last, readings)) if *last == ts => readings.push(point),
                    _ => self.pending.push_back((ts, vec![point])),
                }
            }
        }
    }
}
