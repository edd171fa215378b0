//! Sealing: moving an asset's readings of a bucket that has gone quiet out of one row per
//! millisecond ([`TELEMETRY`]) into one compact chunk ([`TELEMETRY_CHUNKS`]).
//!
//! The writer keeps inserting rows, so ingest pays nothing for the compact form; the
//! retention task seals in bounded batches through the store writer, each batch one
//! transaction (rows removed and chunk written together: a reader sees either, never both
//! or neither). A reading that arrives late for a sealed bucket goes into a row; the next
//! seal rewrites that bucket's chunk with it.

use redb::{ReadableTable, Table, WriteTransaction};

use super::chunk::{self, bucket, BUCKET_MS};
use super::stored::{append_new, decode_chunk};
use super::{row, Point};
use crate::error::StoreError;
use crate::tables::{TELEMETRY, TELEMETRY_CHUNKS};
use crate::time::Timestamp;

/// How long after its end a bucket is sealed, ms: units that were offline upload their
/// buffers within minutes of reconnecting, and a late reading costs a chunk rewrite.
pub const SEAL_AFTER_MS: u64 = 60 * 60 * 1000;

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealing {
    /// Readings moved into chunks.
    pub readings: usize,
    /// Where the next batch starts (`(asset key, ts)`), `None` when nothing is left due.
    pub resume: Option<(u64, u64)>,
}

type Rows<'t> = Table<'t, (u64, u64), &'static [u8]>;

/// Seals the buckets due at `now` from `start` on, whole buckets, until at least `budget`
/// readings moved (a bucket is never split across batches).
///
/// # Errors
/// [`StoreError`] when redb fails or a stored record does not decode.
pub fn seal(
    tx: &WriteTransaction,
    now: Timestamp,
    start: (u64, u64),
    budget: usize,
) -> Result<Sealing, StoreError> {
    let horizon = now.0.saturating_sub(SEAL_AFTER_MS);
    let mut rows = tx.open_table(TELEMETRY)?;
    let mut chunks = tx.open_table(TELEMETRY_CHUNKS)?;
    let (mut at, mut readings) = (start, 0);
    loop {
        let first = rows.range(at..)?.next().transpose()?;
        let Some((asset, ts)) = first.map(|(key, _)| key.value()) else {
            return Ok(Sealing {
                readings,
                resume: None,
            });
        };
        let from = bucket(ts);
        if from.saturating_add(BUCKET_MS) > horizon {
            // The rest of this asset's rows is newer still: on to the next asset.
            match asset.checked_add(1) {
                Some(next) => at = (next, 0),
                None => {
                    return Ok(Sealing {
                        readings,
                        resume: None,
                    })
                }
            }
            continue;
        }
        readings += seal_bucket(&mut rows, &mut chunks, asset, from)?;
        at = (asset, from.saturating_add(BUCKET_MS));
        if readings >= budget {
            return Ok(Sealing {
                readings,
                resume: Some(at),
            });
        }
    }
}

/// Moves the rows of `asset` in the bucket starting at `from` into its chunk; answers how
/// many readings moved (an equal one the chunk holds is dropped, not stored twice).
fn seal_bucket(
    rows: &mut Rows,
    chunks: &mut Rows,
    asset: u64,
    from: u64,
) -> Result<usize, StoreError> {
    let mut points = match chunks.get((asset, from))? {
        Some(stored) => decode_chunk(from, stored.value())?,
        None => Vec::new(),
    };
    let span = (asset, from)..(asset, from.saturating_add(BUCKET_MS));
    let mut late: Vec<(u64, Vec<Point>)> = Vec::new();
    for entry in rows.range(span.clone())? {
        let (key, value) = entry?;
        late.push((key.value().1, row::decode_stored(value.value())?));
    }
    let mut moved = 0;
    for (ts, readings) in late {
        moved += readings.len();
        // The chunk's readings of `ts` came first; the row's follow them, in order.
        let end = points.partition_point(|point| point.ts.0 <= ts);
        let begin = points[..end].partition_point(|point| point.ts.0 < ts);
        let mut at_ts = points[begin..end].to_vec();
        append_new(&mut at_ts, readings);
        points.splice(begin..end, at_ts);
    }
    rows.retain_in(span, |_, _| false)?;
    chunks.insert((asset, from), chunk::encode(from, &points).as_slice())?;
    Ok(moved)
}
