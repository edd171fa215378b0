//! A sealed chunk: every reading of one asset in one [`BUCKET_MS`] bucket, stored as one
//! compact, lossless, columnar record (design section 6, "Telemetry at rest").
//!
//! A row per point costs its 16-byte key, redb's per-entry overhead and eight full `f64`s
//! (about 150 bytes on disk for a nine-field point). A chunk stores each field as a column
//! of differences instead, the way time-series stores do (Gorilla, VLDB 2015, §4.1 for the
//! delta-of-delta timestamps): a unit reporting every second has a constant interval (one
//! byte), and its readings come from JSON decimals (59.91234), so each column is kept as
//! integer mantissas at one decimal exponent and each value as the difference to the one
//! before it (usually one or two bytes). A column whose values do not all round-trip through
//! a decimal mantissa bit for bit (`-0.0`, a value with more than [`MAX_EXP`] decimals, a
//! parse one ULP off) is kept as raw bits instead, so a chunk never changes a value.
//!
//! Presence (a field a point does not carry, a sensor only some points have, `ignition`'s
//! value) is run-length encoded: the runs alternate, starting with a run of "absent" (or
//! `false`), so a field every point carries costs two small numbers per chunk.

use serde::{Deserialize, Serialize};

use super::{Point, SensorName};
use crate::codec::{self, CodecError};
use crate::time::Timestamp;

/// The span of one chunk, ms: ten minutes hold 600 points of a unit reporting every
/// second (about 10 KiB sealed), small enough to rewrite when a late point arrives.
pub const BUCKET_MS: u64 = 10 * 60 * 1000;

/// Most decimals a column keeps as mantissas (GPS fixes carry 7; more is raw bits).
pub const MAX_EXP: u8 = 9;

/// The start of the bucket holding `ts`, ms.
pub fn bucket(ts: u64) -> u64 {
    ts - ts % BUCKET_MS
}

/// The stored form. Field order is the wire order: `count` first, so [`count`] reads it
/// without decoding the columns.
#[derive(Debug, Serialize, Deserialize)]
struct Chunk {
    count: u32,
    /// Delta-of-delta of the stamps, the first against the bucket's start.
    ts: Vec<i64>,
    /// `lat` ... `fuel_pct`, in [`super::FIELDS`] order.
    fixed: [Column; 7],
    ignition: Flags,
    /// Each name once; the points decoded from the chunk share it.
    sensors: Vec<(SensorName, Column)>,
}

/// A nullable number column.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Column {
    present: Vec<u32>,
    values: Values,
}

#[derive(Debug, Serialize, Deserialize)]
enum Values {
    /// `value = mantissa / 10^exp`, mantissas as differences to the previous one.
    Decimal { exp: u8, deltas: Vec<i64> },
    /// The `f64` bits, each XOR the previous (an unchanged value is a zero byte).
    Raw(Vec<u64>),
}

impl Default for Values {
    fn default() -> Self {
        Values::Decimal {
            exp: 0,
            deltas: Vec::new(),
        }
    }
}

/// `ignition`: whether a point has it, and its value where it does.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Flags {
    present: Vec<u32>,
    on: Vec<u32>,
}

/// One chunk's record for `points` (every one in the bucket starting at `start`, sorted
/// by `ts`, readings of one millisecond in arrival order).
///
/// # Panics
/// When a point lies outside the bucket or the points are not sorted: the sealer builds
/// both, so either is a programming error, not input.
pub fn encode(start: u64, points: &[Point]) -> Vec<u8> {
    let mut ts = Vec::with_capacity(points.len());
    let (mut previous, mut interval) = (start, 0i64);
    for point in points {
        assert!(
            point.ts.0 >= previous && bucket(point.ts.0) == start,
            "chunk points are sorted and inside their bucket"
        );
        let delta = i64::try_from(point.ts.0 - previous).expect("inside one bucket");
        ts.push(delta - interval);
        (previous, interval) = (point.ts.0, delta);
    }
    let fixed = [
        |p: &Point| p.lat,
        |p: &Point| p.lon,
        |p: &Point| p.speed_kmh,
        |p: &Point| p.heading,
        |p: &Point| p.engine_hours,
        |p: &Point| p.odometer_km,
        |p: &Point| p.fuel_pct,
    ]
    .map(|field| column(points.iter().map(field)));
    let mut names: Vec<&SensorName> = points.iter().flat_map(|p| p.sensors.keys()).collect();
    names.sort_unstable();
    names.dedup();
    let sensors = names
        .into_iter()
        .map(|name| {
            let values = points.iter().map(|p| p.sensors.get(&**name).copied());
            (name.clone(), column(values))
        })
        .collect();
    let ignition = Flags {
        present: runs(points.iter().map(|p| p.ignition.is_some())),
        on: runs(points.iter().filter_map(|p| p.ignition)),
    };
    codec::encode(&Chunk {
        count: u32::try_from(points.len()).expect("a bucket holds fewer than 2^32 readings"),
        ts,
        fixed,
        ignition,
        sensors,
    })
}

/// How many readings a chunk record holds, without decoding its columns.
///
/// # Errors
/// [`CodecError`] when the record does not start like a chunk.
pub fn count(bytes: &[u8]) -> Result<usize, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&codec::SCHEMA_VERSION, body)) => {
            Ok(postcard::take_from_bytes::<u32>(body)?.0 as usize)
        }
        Some((&found, _)) => Err(CodecError::Version { found }),
    }
}

/// The readings of a chunk record of the bucket starting at `start`, in stored order.
///
/// # Errors
/// [`CodecError`] when the record does not decode or its columns disagree (a corrupt
/// record is an error, never a panic or a wrong point).
pub fn decode(start: u64, bytes: &[u8]) -> Result<Vec<Point>, CodecError> {
    decode_for(start, bytes, (0, u64::MAX))
}

/// [`decode`] for a reader of the stamps in `[from, to)`: the points outside are decoded
/// (the columns are differences, read from the start) but get no sensors, which are most of
/// a point's decoding cost; the caller drops them. A history page starts inside a chunk.
pub fn decode_for(
    start: u64,
    bytes: &[u8],
    (from, to): (u64, u64),
) -> Result<Vec<Point>, CodecError> {
    let chunk: Chunk = codec::decode(bytes)?;
    let count = chunk.count as usize;
    if chunk.ts.len() != count {
        return Err(CodecError::Chunk("stamp count"));
    }
    let mut points = Vec::with_capacity(count);
    let (mut previous, mut interval) = (start, 0i64);
    for dd in &chunk.ts {
        interval = interval
            .checked_add(*dd)
            .ok_or(CodecError::Chunk("stamp"))?;
        previous = u64::try_from(interval)
            .ok()
            .and_then(|delta| previous.checked_add(delta))
            .filter(|ts| bucket(*ts) == start)
            .ok_or(CodecError::Chunk("stamp outside its bucket"))?;
        points.push(Point::empty(Timestamp(previous)));
    }
    let setters: [fn(&mut Point, f64); 7] = [
        |p, v| p.lat = Some(v),
        |p, v| p.lon = Some(v),
        |p, v| p.speed_kmh = Some(v),
        |p, v| p.heading = Some(v),
        |p, v| p.engine_hours = Some(v),
        |p, v| p.odometer_km = Some(v),
        |p, v| p.fuel_pct = Some(v),
    ];
    for (column, set) in chunk.fixed.iter().zip(setters) {
        fill(column, &mut points, set)?;
    }
    for (name, column) in &chunk.sensors {
        fill(column, &mut points, |p, v| {
            if (from..to).contains(&p.ts.0) {
                p.sensors.insert(name.clone(), v);
            }
        })?;
    }
    let present = expand(&chunk.ignition.present, count)?;
    let on = expand(&chunk.ignition.on, present.iter().filter(|p| **p).count())?;
    let mut on = on.into_iter();
    for (point, _) in points.iter_mut().zip(present).filter(|(_, p)| *p) {
        point.ignition = on.next();
    }
    Ok(points)
}

/// A column for `values`: decimal mantissas when every value round-trips through one
/// exponent, raw bits otherwise.
fn column(values: impl Iterator<Item = Option<f64>> + Clone) -> Column {
    let present = runs(values.clone().map(|v| v.is_some()));
    let values: Vec<f64> = values.flatten().collect();
    let exp = values
        .iter()
        .map(|v| decimals(*v))
        .try_fold(0u8, |most, d| Some(most.max(d?)));
    let mantissas = exp.and_then(|exp| {
        values
            .iter()
            .map(|v| mantissa(*v, exp))
            .collect::<Option<Vec<i64>>>()
            .map(|m| (exp, m))
    });
    let values = match mantissas {
        Some((exp, mantissas)) => Values::Decimal {
            exp,
            deltas: differences(&mantissas),
        },
        None => {
            let mut previous = 0u64;
            Values::Raw(
                values
                    .iter()
                    .map(|v| {
                        let bits = v.to_bits();
                        let xor = bits ^ previous;
                        previous = bits;
                        xor
                    })
                    .collect(),
            )
        }
    };
    Column { present, values }
}

/// The fewest decimals that give `v` back bit for bit, if at most [`MAX_EXP`].
fn decimals(v: f64) -> Option<u8> {
    (0..=MAX_EXP).find(|exp| mantissa(v, *exp).is_some())
}

/// `v`'s mantissa at `exp` decimals, if `mantissa / 10^exp` is `v` bit for bit. Both
/// operands of that division are exact in an `f64` (|mantissa| < 2^53, 10^exp for
/// exp <= 22), and IEEE 754 division rounds correctly, so decoding is exact everywhere.
fn mantissa(v: f64, exp: u8) -> Option<i64> {
    let scale = 10f64.powi(i32::from(exp));
    let m = (v * scale).round();
    const LIMIT: f64 = (1u64 << 53) as f64;
    // Compared as decoding computes it (from the integer): -0.0 has no integer mantissa.
    let m = (m.abs() < LIMIT).then_some(m as i64)?;
    ((m as f64 / scale).to_bits() == v.to_bits()).then_some(m)
}

fn differences(values: &[i64]) -> Vec<i64> {
    let mut previous = 0i64;
    values
        .iter()
        .map(|v| {
            let delta = v.wrapping_sub(previous);
            previous = *v;
            delta
        })
        .collect()
}

/// Run lengths of `flags`, alternating and starting with a run of `false` (maybe 0).
fn runs(flags: impl Iterator<Item = bool>) -> Vec<u32> {
    let (mut out, mut current, mut length) = (Vec::new(), false, 0u32);
    for flag in flags {
        if flag != current {
            out.push(length);
            (current, length) = (flag, 0);
        }
        length += 1;
    }
    if length > 0 {
        out.push(length);
    }
    out
}

/// The flags of `runs`, which must describe exactly `count` of them.
fn expand(runs: &[u32], count: usize) -> Result<Vec<bool>, CodecError> {
    let mut out = Vec::with_capacity(count);
    for (index, run) in runs.iter().enumerate() {
        if out.len() + *run as usize > count {
            return Err(CodecError::Chunk("presence runs exceed the count"));
        }
        out.extend(std::iter::repeat_n(index % 2 == 1, *run as usize));
    }
    match out.len() == count {
        true => Ok(out),
        false => Err(CodecError::Chunk("presence runs short of the count")),
    }
}

/// Sets `column`'s values on the points that have one.
fn fill(
    column: &Column,
    points: &mut [Point],
    mut set: impl FnMut(&mut Point, f64),
) -> Result<(), CodecError> {
    if matches!(column.values, Values::Decimal { exp, .. } if exp > MAX_EXP) {
        return Err(CodecError::Chunk("decimal exponent"));
    }
    let present = expand(&column.present, points.len())?;
    let mut values = values(&column.values);
    for (point, _) in points.iter_mut().zip(present).filter(|(_, p)| *p) {
        set(
            point,
            values.next().ok_or(CodecError::Chunk("column short"))?,
        );
    }
    match values.next() {
        None => Ok(()),
        Some(_) => Err(CodecError::Chunk("column longer than its presence")),
    }
}

/// A column's values in order.
fn values(values: &Values) -> Box<dyn Iterator<Item = f64> + '_> {
    match values {
        Values::Decimal { exp, deltas } => {
            let scale = 10f64.powi(i32::from(*exp));
            let mut mantissa = 0i64;
            Box::new(deltas.iter().map(move |delta| {
                mantissa = mantissa.wrapping_add(*delta);
                mantissa as f64 / scale
            }))
        }
        Values::Raw(xors) => {
            let mut bits = 0u64;
            Box::new(xors.iter().map(move |xor| {
                bits ^= xor;
                f64::from_bits(bits)
            }))
        }
    }
}

#[cfg(test)]
mod tests;
