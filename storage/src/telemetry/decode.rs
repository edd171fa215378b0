//! Decoding a unit's payload straight into a [`Point`], as the JSON is parsed.
//!
//! The payload is never built into a `serde_json::Value` first: every accepted point came
//! through here, and the tree (a map of owned keys, then a second walk) cost more than the
//! rest of the device actor's work. Parsing as we go also sees what a tree hides: a name
//! given twice (a `Value` keeps only the last one, so `{"lat":95,"lat":10}` was stored as
//! lat 10 and the out-of-range 95 never reported).
//!
//! A refusal is recorded in a slot the visitors share and parsing stops there; serde's own
//! error only surfaces for text that is not JSON at all.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{
    Decoded, Point, PointError, MAX_FUTURE_MS, MAX_PAYLOAD_BYTES, MAX_SENSORS, MAX_SENSOR_NAME,
    MIN_TS_MS,
};
use crate::time::Timestamp;

/// Decodes and validates one payload. `now` is the gateway clock, used for the future
/// check only; stamping a missing `ts` is the caller's job (it keeps per-unit order).
///
/// Errors name the field and the rule: not JSON or not an object, a name given twice, a
/// field of the wrong type or out of its range, an unknown field, a `ts` before 2000 (with
/// a hint when it looks like seconds) or more than [`MAX_FUTURE_MS`] ahead.
pub fn decode(payload: &[u8], now: Timestamp) -> Result<Decoded, PointError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(PointError::TooLarge {
            size: payload.len(),
        });
    }
    let mut refusal = None;
    let mut json = serde_json::Deserializer::from_slice(payload);
    let parsed = PointSeed {
        now,
        refusal: &mut refusal,
    }
    .deserialize(&mut json)
    .and_then(|decoded| json.end().map(|()| decoded));
    parsed.map_err(|err| refusal.unwrap_or_else(|| PointError::InvalidJson(err.to_string())))
}

/// The top-level fields of a point, in the order of the bit that marks each as seen (and
/// the order exports list them in).
pub const FIELDS: [&str; 10] = [
    "ts",
    "lat",
    "lon",
    "speed_kmh",
    "heading",
    "engine_hours",
    "odometer_km",
    "fuel_pct",
    "ignition",
    "sensors",
];

/// Ranges of the numeric fields (DESIGN section 4), with the text a refusal shows.
type Range = (fn(f64) -> bool, &'static str);

fn range_of(field: &str) -> Option<Range> {
    let range: Range = match field {
        "lat" => (|n| (-90.0..=90.0).contains(&n), "[-90, 90]"),
        "lon" => (|n| (-180.0..=180.0).contains(&n), "[-180, 180]"),
        "speed_kmh" => (|n| (0.0..=500.0).contains(&n), "[0, 500]"),
        "heading" => (|n| (0.0..360.0).contains(&n), "[0, 360)"),
        "engine_hours" => (|n| (0.0..=1e6).contains(&n), "[0, 1000000]"),
        "odometer_km" => (|n| (0.0..=1e8).contains(&n), "[0, 100000000]"),
        "fuel_pct" => (|n| (0.0..=100.0).contains(&n), "[0, 100]"),
        _ => return None,
    };
    Some(range)
}

/// `ts` values from 2000-01-01 to 5138 counted in seconds: a unit that sends seconds
/// gets told so, not only that its time is before 2000.
const SECONDS_HINT: std::ops::Range<u64> = 946_684_800..100_000_000_000;

struct PointSeed<'r> {
    now: Timestamp,
    refusal: &'r mut Option<PointError>,
}

/// Records why the point is refused and stops the parse.
fn refuse<E: de::Error>(slot: &mut Option<PointError>, error: PointError) -> E {
    let message = error.to_string();
    *slot = Some(error);
    E::custom(message)
}

impl<'de> DeserializeSeed<'de> for PointSeed<'_> {
    type Value = Decoded;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Decoded, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PointSeed<'_> {
    type Value = Decoded;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object (the top level of a point must be an object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Decoded, A::Error> {
        let mut point = Point::empty(self.now);
        let mut unit_ts = None;
        let mut seen = 0u16;
        while let Some(Name(name)) = map.next_key::<Name>()? {
            let Some(index) = FIELDS.iter().position(|field| *field == name) else {
                let field = name.escape_debug().to_string();
                return Err(refuse(self.refusal, PointError::UnknownField { field }));
            };
            if seen & (1 << index) != 0 {
                let field = FIELDS[index].to_owned();
                return Err(refuse(self.refusal, PointError::DuplicateField { field }));
            }
            seen |= 1 << index;
            let field = FIELDS[index];
            if field == "sensors" {
                point.sensors = map.next_value_seed(SensorsSeed {
                    refusal: &mut *self.refusal,
                })?;
                continue;
            }
            let value = map.next_value::<Scalar>()?;
            let checked = match field {
                "ts" => ts(value, self.now).map(|ts| unit_ts = Some(ts)),
                "ignition" => match value {
                    Scalar::Bool(on) => {
                        point.ignition = Some(on);
                        Ok(())
                    }
                    _ => Err(wrong_type("ignition", "true or false")),
                },
                _ => ranged(field, value).map(|n| *point.number_mut(field) = Some(n)),
            };
            if let Err(error) = checked {
                return Err(refuse(self.refusal, error));
            }
        }
        if let Some(ts) = unit_ts {
            point.ts = ts;
        }
        Ok(Decoded { unit_ts, point })
    }
}

impl Point {
    /// The slot of a numeric top-level field (one of `FIELDS` with a range).
    fn number_mut(&mut self, field: &str) -> &mut Option<f64> {
        match field {
            "lat" => &mut self.lat,
            "lon" => &mut self.lon,
            "speed_kmh" => &mut self.speed_kmh,
            "heading" => &mut self.heading,
            "engine_hours" => &mut self.engine_hours,
            "odometer_km" => &mut self.odometer_km,
            _ => &mut self.fuel_pct,
        }
    }
}

fn wrong_type(field: &str, expected: &'static str) -> PointError {
    PointError::WrongType {
        field: field.to_owned(),
        expected,
    }
}

fn ts(value: Scalar, now: Timestamp) -> Result<Timestamp, PointError> {
    let Scalar::Int(ts) = value else {
        return Err(wrong_type(
            "ts",
            "milliseconds since the epoch as a non-negative integer",
        ));
    };
    if ts < MIN_TS_MS {
        let range = if SECONDS_HINT.contains(&ts) {
            "2000-01-01 or later: this looks like seconds since the epoch, ts is in milliseconds"
        } else {
            "2000-01-01 or later"
        };
        return Err(PointError::OutOfRange {
            field: "ts".into(),
            value: ts as f64,
            range,
        });
    }
    if ts > now.0.saturating_add(MAX_FUTURE_MS) {
        return Err(PointError::FutureTs { ts });
    }
    Ok(Timestamp(ts))
}

fn ranged(field: &str, value: Scalar) -> Result<f64, PointError> {
    let n = value
        .number()
        .ok_or_else(|| wrong_type(field, "a number"))?;
    let (ok, range) = range_of(field).unwrap_or((|_| true, ""));
    if ok(n) {
        Ok(n)
    } else {
        Err(PointError::OutOfRange {
            field: field.to_owned(),
            value: n,
            range,
        })
    }
}

/// A member name, borrowed from the payload unless it had escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(name)))
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(name.to_owned())))
            }
            fn visit_string<E: de::Error>(self, name: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(name)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// A member value as far as a point cares: a number, a boolean, or something else (a
/// string, null, an array or an object, consumed and refused by the caller).
enum Scalar {
    Int(u64),
    Number(f64),
    Bool(bool),
    Other,
}

impl Scalar {
    /// A finite number (JSON has no others, but a float overflowing to infinity is
    /// refused by the parser anyway).
    fn number(&self) -> Option<f64> {
        match *self {
            Scalar::Int(n) => Some(n as f64),
            Scalar::Number(n) if n.is_finite() => Some(n),
            _ => None,
        }
    }
}

impl<'de> de::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        // serde_json gives non-negative integers as u64, so this one is negative.
        Ok(Scalar::Number(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

/// `sensors`: an object of at most [`MAX_SENSORS`] names (1 to [`MAX_SENSOR_NAME`] bytes,
/// no control characters, each once) to numbers.
struct SensorsSeed<'r> {
    refusal: &'r mut Option<PointError>,
}

impl<'de> DeserializeSeed<'de> for SensorsSeed<'_> {
    type Value = BTreeMap<super::SensorName, f64>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SensorsSeed<'_> {
    type Value = BTreeMap<super::SensorName, f64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of name -> number")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut sensors = BTreeMap::new();
        while let Some(Name(name)) = map.next_key::<Name>()? {
            let field = || format!("sensors.{}", name.escape_debug());
            if let Some(rule) = bad_sensor_name(&name) {
                let field = field();
                return Err(refuse(
                    self.refusal,
                    PointError::InvalidName { field, rule },
                ));
            }
            let Some(reading) = map.next_value::<Scalar>()?.number() else {
                let error = wrong_type(&field(), "a number");
                return Err(refuse(self.refusal, error));
            };
            if sensors.len() == MAX_SENSORS && !sensors.contains_key(name.as_ref()) {
                let error = PointError::OutOfRange {
                    field: "sensors".into(),
                    value: (MAX_SENSORS + 1) as f64,
                    range: "at most 64 sensors",
                };
                return Err(refuse(self.refusal, error));
            }
            if sensors
                .insert(super::SensorName::from(name.as_ref()), reading)
                .is_some()
            {
                let error = PointError::DuplicateField { field: field() };
                return Err(refuse(self.refusal, error));
            }
        }
        Ok(sensors)
    }

    // Anything but an object: consumed by nobody, refused with the field's rule.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.not_an_object())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(self.not_an_object())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(self.not_an_object())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(self.not_an_object())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(self.not_an_object())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(self.not_an_object())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.not_an_object())
    }
}

impl SensorsSeed<'_> {
    fn not_an_object<E: de::Error>(self) -> E {
        refuse(
            self.refusal,
            wrong_type("sensors", "an object of name -> number"),
        )
    }
}

/// Why a sensor name is refused, if it is: names become JSON keys, CSV headers and
/// console labels, where an empty, huge or control-character name breaks the reader.
fn bad_sensor_name(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > MAX_SENSOR_NAME {
        Some("a sensor name is 1 to 64 bytes")
    } else if name.chars().any(char::is_control) {
        Some("a sensor name has no control characters")
    } else {
        None
    }
}
