//! One telemetry row: the readings of one asset in one millisecond, in arrival order.
//!
//! A millisecond is not a reading's identity: a unit may send two readings stamped alike
//! (`{"ts":T,"fuel_pct":10}` then `{"ts":T,"fuel_pct":90}`), and both are kept, in history,
//! live and counts alike. Almost every row holds one reading and is stored as that one
//! point (a record of [`crate::codec`], first byte the schema version, so rows written
//! before this existed read unchanged); a row with more is [`READINGS`] followed by the
//! record of the list. A reading equal to one the row holds (a QoS redelivery, or a unit
//! resending a stamped point) is not added again: writes are idempotent by content.

use super::Point;
use crate::codec::{self, CodecError};
use crate::error::StoreError;

/// The first byte of a row holding several readings; never a schema version.
pub const READINGS: u8 = 0xA5;

/// The readings a row holds, oldest first.
///
/// # Errors
/// [`CodecError`] when the row does not decode (empty, unknown version, corrupt).
pub fn decode(bytes: &[u8]) -> Result<Vec<Point>, CodecError> {
    match bytes.split_first() {
        Some((&READINGS, list)) => codec::decode(list),
        _ => Ok(vec![codec::decode(bytes)?]),
    }
}

/// [`decode`] for a row read from the store: a row that does not decode is the store's
/// failure, named by its table.
///
/// # Errors
/// [`StoreError::Codec`] when the row does not decode.
pub fn decode_stored(bytes: &[u8]) -> Result<Vec<Point>, StoreError> {
    decode(bytes).map_err(|source| StoreError::Codec {
        table: "telemetry",
        source,
    })
}

/// The row to store when `point` arrives for a millisecond that already holds `stored`,
/// and the reading `point` is in it: `None` (keep the row as it is) with the position of
/// the equal reading it holds, else the row with `point` appended, at the end.
///
/// # Errors
/// [`CodecError`] when the stored row does not decode.
pub fn merge(stored: &[u8], point: &Point) -> Result<(Option<Vec<u8>>, usize), CodecError> {
    let mut readings = decode(stored)?;
    if let Some(found) = readings.iter().position(|reading| reading == point) {
        return Ok((None, found));
    }
    readings.push(point.clone());
    let mut row = vec![READINGS];
    row.extend(codec::encode(&readings));
    Ok((Some(row), readings.len() - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn point(fuel: f64) -> Point {
        Point {
            fuel_pct: Some(fuel),
            ..Point::empty(Timestamp(1_800_000_000_000))
        }
    }

    #[test]
    fn a_single_reading_is_a_plain_point_record_as_before() {
        let row = codec::encode(&point(10.0));
        assert_eq!(decode(&row).expect("decodes"), [point(10.0)]);
    }

    #[test]
    fn a_second_reading_in_the_millisecond_is_kept_after_the_first() {
        let row = codec::encode(&point(10.0));
        let (row, at) = merge(&row, &point(90.0)).expect("merges");
        let row = row.expect("new reading");
        assert_eq!((row[0], at), (READINGS, 1));
        let (row, at) = merge(&row, &point(50.0)).expect("merges");
        let row = row.expect("new reading");
        assert_eq!(at, 2);
        assert_eq!(
            decode(&row).expect("decodes"),
            [point(10.0), point(90.0), point(50.0)]
        );
    }

    #[test]
    fn an_equal_reading_is_stored_once() {
        let row = codec::encode(&point(10.0));
        assert_eq!(merge(&row, &point(10.0)).expect("merges"), (None, 0));
        let two = merge(&row, &point(90.0)).expect("merges").0.expect("new");
        assert_eq!(merge(&two, &point(90.0)).expect("merges"), (None, 1));
    }

    #[test]
    fn a_corrupt_row_is_an_error_not_a_panic() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[READINGS]).is_err());
        assert!(decode(&[READINGS, 0xff, 0xff]).is_err());
        assert!(merge(&[7, 1, 2], &point(1.0)).is_err());
    }
}
