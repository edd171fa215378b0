//! A unit's telemetry point: decoding, validation and the JSON an account receives.
//!
//! Validation walks the JSON object field by field as it is parsed (see `decode`), so
//! every refusal names the field and the rule (the device status shows it to the owner).

mod decode;
mod render;
pub use decode::FIELDS;
pub mod chunk;
pub mod row;
pub mod seal;
pub mod stored;

pub use decode::decode;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::AssetId;
use crate::time::Timestamp;

/// DESIGN section 4: a point is at most 4 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 4096;
/// A unit's clock may run ahead a little; further ahead is a broken clock, not a point.
pub const MAX_FUTURE_MS: u64 = 5 * 60 * 1000;
/// Units whose clock was never set report 1970; such points are refused, not misfiled.
pub const MIN_TS_MS: u64 = 946_684_800_000; // 2000-01-01T00:00:00Z
pub const MAX_SENSORS: usize = 64;
pub const MAX_SENSOR_NAME: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub ts: Timestamp,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub speed_kmh: Option<f64>,
    pub heading: Option<f64>,
    pub engine_hours: Option<f64>,
    pub odometer_km: Option<f64>,
    pub fuel_pct: Option<f64>,
    pub ignition: Option<bool>,
    /// By name. A name is shared (`Arc<str>`): the points decoded from one chunk share its
    /// names instead of copying each for each point.
    pub sensors: BTreeMap<SensorName, f64>,
}

/// A sensor's name, 1 to [`MAX_SENSOR_NAME`] bytes, shared between the points that have it.
pub type SensorName = std::sync::Arc<str>;

impl Point {
    /// A point of `ts` with no field.
    pub fn empty(ts: Timestamp) -> Point {
        Point {
            ts,
            lat: None,
            lon: None,
            speed_kmh: None,
            heading: None,
            engine_hours: None,
            odometer_km: None,
            fuel_pct: None,
            ignition: None,
            sensors: BTreeMap::new(),
        }
    }
}

/// Why a payload was dropped. [`PointError::reason`] is the metrics label.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PointError {
    #[error("payload is {size} bytes, the limit is {MAX_PAYLOAD_BYTES}")]
    TooLarge { size: usize },
    #[error("payload is not a JSON object: {0}")]
    InvalidJson(String),
    #[error("{field}: expected {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    #[error("{field}: {} is outside {range}", shown(*value))]
    OutOfRange {
        field: String,
        value: f64,
        range: &'static str,
    },
    #[error("ts: {ts} ms is more than {MAX_FUTURE_MS} ms ahead of the gateway clock")]
    FutureTs { ts: u64 },
    #[error("{field}: unknown field")]
    UnknownField { field: String },
    /// A name given twice: JSON parsers disagree on which one wins (RFC 8259 §4), so a
    /// point that says two things is refused rather than stored as one of them.
    #[error("{field}: the name appears twice; a point names each field once")]
    DuplicateField { field: String },
    #[error("{field}: {rule}")]
    InvalidName { field: String, rule: &'static str },
}

/// A number as an error names it: plain, or in exponent form past 15 digits (1e308 would
/// otherwise print as 309 digits into the unit's status).
fn shown(value: f64) -> String {
    if value != 0.0 && !(1e-6..1e15).contains(&value.abs()) {
        format!("{value:e}")
    } else {
        value.to_string()
    }
}

impl PointError {
    pub fn reason(&self) -> &'static str {
        match self {
            PointError::TooLarge { .. } => "too_large",
            PointError::InvalidJson(_) => "invalid_json",
            PointError::WrongType { .. } => "wrong_type",
            PointError::OutOfRange { .. } => "out_of_range",
            PointError::FutureTs { .. } => "future_ts",
            PointError::UnknownField { .. } => "unknown_field",
            PointError::DuplicateField { .. } => "duplicate_field",
            PointError::InvalidName { .. } => "invalid_name",
        }
    }
}

/// A validated point whose `ts` may still be missing (the gateway then stamps it).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub unit_ts: Option<Timestamp>,
    pub point: Point,
}

impl Point {
    /// [`Point::to_json`] as text, written in one pass: the live path renders every accepted
    /// point, and building a `Value` tree first cost more than the rest of the fan-out.
    pub fn render_json(&self, asset_id: &AssetId) -> String {
        let mut out = Vec::with_capacity(256);
        self.render_json_into(asset_id, &mut out);
        // The renderer writes UTF-8 only (ASCII, and names that were `str`).
        String::from_utf8(out).unwrap_or_default()
    }

    /// [`Point::render_json`] appended to `out` ([`render::point`]): history pages and
    /// exports render thousands of points into one buffer, without a `String` each.
    pub fn render_json_into(&self, asset_id: &AssetId, out: &mut Vec<u8>) {
        render::point(self, asset_id.as_str(), out);
    }

    /// The point as an account receives it, under the asset id that account knows.
    pub fn to_json(&self, asset_id: &AssetId) -> Value {
        let mut out = Map::new();
        out.insert("asset_id".into(), Value::from(asset_id.as_str()));
        out.insert("ts".into(), Value::from(self.ts.to_rfc3339()));
        out.insert("ts_ms".into(), Value::from(self.ts.0));
        let numbers = [
            ("lat", self.lat),
            ("lon", self.lon),
            ("speed_kmh", self.speed_kmh),
            ("heading", self.heading),
            ("engine_hours", self.engine_hours),
            ("odometer_km", self.odometer_km),
            ("fuel_pct", self.fuel_pct),
        ];
        for (name, value) in numbers {
            if let Some(value) = value {
                out.insert(name.into(), Value::from(value));
            }
        }
        if let Some(ignition) = self.ignition {
            out.insert("ignition".into(), Value::from(ignition));
        }
        if !self.sensors.is_empty() {
            let sensors: Map<String, Value> = self
                .sensors
                .iter()
                .map(|(name, value)| (name.to_string(), Value::from(*value)))
                .collect();
            out.insert("sensors".into(), Value::Object(sensors));
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    #[test]
    fn an_out_of_range_number_is_named_short() {
        let huge = decode_str(r#"{"engine_hours":1e308}"#).expect_err("refused");
        assert_eq!(
            huge.to_string(),
            "engine_hours: 1e308 is outside [0, 1000000]"
        );
        let plain = decode_str(r#"{"lat":95.5}"#).expect_err("refused");
        assert_eq!(plain.to_string(), "lat: 95.5 is outside [-90, 90]");
    }

    #[test]
    fn the_rendered_text_is_the_json_document_byte_for_byte() {
        let asset = AssetId::parse("ex-1").expect("id");
        for raw in [
            r#"{"fuel_pct":61.5}"#,
            r#"{"lat":59.91,"lon":10.75,"speed_kmh":0,"heading":359.5,"engine_hours":1e6,"odometer_km":12.25,"ignition":true,"sensors":{"b":1,"a":-0.5}}"#,
            r#"{"ts":1799999999000,"ignition":false,"sensors":{}}"#,
        ] {
            let point = decode_str(raw).expect("valid").point;
            assert_eq!(
                point.render_json(&asset),
                point.to_json(&asset).to_string(),
                "{raw}"
            );
        }
    }

    fn decode_str(raw: &str) -> Result<Decoded, PointError> {
        decode(raw.as_bytes(), NOW)
    }

    #[test]
    fn full_point_decodes() {
        let decoded = decode_str(
            r#"{"ts":1799999999000,"lat":59.9,"lon":10.7,"speed_kmh":12.5,"heading":359.9,
            "engine_hours":1200.5,"odometer_km":88000,"fuel_pct":55,"ignition":true,
            "sensors":{"hydraulic_bar":180.5}}"#,
        )
        .expect("valid point");
        assert_eq!(decoded.unit_ts, Some(Timestamp(1_799_999_999_000)));
        assert_eq!(decoded.point.fuel_pct, Some(55.0));
        assert_eq!(decoded.point.sensors["hydraulic_bar"], 180.5);
    }

    #[test]
    fn missing_ts_is_left_to_the_gateway() {
        let decoded = decode_str(r#"{"lat":1.0}"#).expect("valid");
        assert_eq!(decoded.unit_ts, None);
        assert_eq!(decoded.point.ts, NOW);
    }

    #[test]
    fn each_malformed_class_is_refused_with_its_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("not json", "invalid_json", "JSON"),
            ("[1,2]", "invalid_json", "object"),
            (r#"{"lat":"north"}"#, "wrong_type", "lat"),
            (r#"{"ignition":1}"#, "wrong_type", "ignition"),
            (r#"{"ts":-5}"#, "wrong_type", "ts"),
            (r#"{"ts":1.5}"#, "wrong_type", "ts"),
            (r#"{"lat":91}"#, "out_of_range", "lat"),
            (r#"{"lon":-180.5}"#, "out_of_range", "lon"),
            (r#"{"fuel_pct":100.1}"#, "out_of_range", "fuel_pct"),
            (r#"{"heading":360}"#, "out_of_range", "heading"),
            (r#"{"speed_kmh":-1}"#, "out_of_range", "speed_kmh"),
            (r#"{"ts":1000}"#, "out_of_range", "ts"),
            (r#"{"ts":1800000400000}"#, "future_ts", "ts"),
            (r#"{"sensors":{"x":"hot"}}"#, "wrong_type", "sensors.x"),
            (r#"{"sensors":[1]}"#, "wrong_type", "sensors"),
            (r#"{"altitude":3}"#, "unknown_field", "altitude"),
        ];
        for (payload, reason, names) in cases {
            let err = decode_str(payload).expect_err(payload);
            assert_eq!(err.reason(), *reason, "{payload}: {err}");
            assert!(err.to_string().contains(names), "{payload}: {err}");
        }
    }

    #[test]
    fn a_name_given_twice_is_refused_naming_it_wherever_it_is() {
        let cases: &[(&str, &str)] = &[
            (r#"{"ts":1799999999000,"lat":10,"lat":10.5}"#, "lat"),
            (r#"{"lat":10,"lat":10}"#, "lat"),
            (r#"{"ts":1799999999000,"ts":1799999999001}"#, "ts"),
            (r#"{"ignition":true,"ignition":false}"#, "ignition"),
            (r#"{"sensors":{},"sensors":{"a":1}}"#, "sensors"),
            (r#"{"sensors":{"a":1,"b":2,"a":3}}"#, "sensors.a"),
            // The same name spelled with an escape is the same name.
            (r#"{"sensors":{"a":1,"\u0061":1}}"#, "sensors.a"),
            (r#"{"fuel_pct":1,"fuel\u005fpct":2}"#, "fuel_pct"),
        ];
        for (payload, field) in cases {
            let err = decode_str(payload).expect_err(payload);
            assert_eq!(
                err,
                PointError::DuplicateField {
                    field: (*field).into()
                },
                "{payload}"
            );
            assert!(err.to_string().starts_with(field), "{err}");
        }
        // The bug report's point: refused (its first lat is out of range, read in order),
        // never stored as lat 10.
        let err = decode_str(r#"{"ts":1799999999000,"lat":95,"lat":10}"#).expect_err("95");
        assert_eq!(err.reason(), "out_of_range", "{err}");
    }

    #[test]
    fn sensor_names_are_refused_with_their_rule() {
        let long = "s".repeat(MAX_SENSOR_NAME + 1);
        let cases = [
            (r#"{"sensors":{"":1}}"#.to_owned(), "1 to 64 bytes"),
            (format!(r#"{{"sensors":{{"{long}":1}}}}"#), "1 to 64 bytes"),
            (r#"{"sensors":{"tank\n1":1}}"#.into(), "control characters"),
            (
                r#"{"sensors":{"tank\u0000":1}}"#.into(),
                "control characters",
            ),
            (
                r#"{"sensors":{"bell\u0007":1}}"#.into(),
                "control characters",
            ),
            (
                r#"{"sensors":{"del\u007f":1}}"#.into(),
                "control characters",
            ),
        ];
        for (payload, rule) in &cases {
            let err = decode_str(payload).expect_err(payload);
            assert_eq!(err.reason(), "invalid_name", "{payload}: {err}");
            assert!(err.to_string().contains(rule), "{payload}: {err}");
            assert!(err.to_string().starts_with("sensors."), "{err}");
        }
        // The control character is shown escaped, not written into the status raw.
        let err = decode_str(r#"{"sensors":{"tank\n1":1}}"#).expect_err("newline");
        assert!(err.to_string().contains(r"tank\n1"), "{err}");
        // Names that merely look unusual are fine: spaces, dots, Unicode.
        let ok = decode_str(r#"{"sensors":{"tank 1.level":1,"température":2}}"#).expect("ok");
        assert_eq!(ok.point.sensors.len(), 2);
    }

    #[test]
    fn a_ts_in_seconds_is_refused_saying_so() {
        let err = decode_str(r#"{"ts":1799999999}"#).expect_err("seconds");
        assert_eq!(err.reason(), "out_of_range");
        assert!(err.to_string().contains("looks like seconds"), "{err}");
        // Milliseconds before 2000 are just too early, not seconds.
        let err = decode_str(r#"{"ts":5000}"#).expect_err("1970");
        assert!(!err.to_string().contains("seconds"), "{err}");
    }

    #[test]
    fn too_many_sensors_and_trailing_text_are_refused() {
        let names: Vec<String> = (0..=MAX_SENSORS).map(|i| format!(r#""s{i}":1"#)).collect();
        let payload = format!(r#"{{"sensors":{{{}}}}}"#, names.join(","));
        let err = decode_str(&payload).expect_err("65 sensors");
        assert_eq!(err.reason(), "out_of_range");
        assert!(err.to_string().contains("at most 64 sensors"), "{err}");
        let exactly: Vec<String> = (0..MAX_SENSORS).map(|i| format!(r#""s{i}":1"#)).collect();
        let payload = format!(r#"{{"sensors":{{{}}}}}"#, exactly.join(","));
        assert_eq!(decode_str(&payload).expect("64").point.sensors.len(), 64);
        for payload in [r#"{"lat":1} {"lat":2}"#, r#"{"lat":1}x"#, r#"{"lat":1"#] {
            let err = decode_str(payload).expect_err(payload);
            assert_eq!(err.reason(), "invalid_json", "{payload}: {err}");
        }
        // Whitespace around the object is still fine.
        decode_str(" \n{\"lat\":1}\r\n ").expect("whitespace");
    }

    #[test]
    fn wrong_types_of_every_kind_are_refused_with_the_field() {
        for value in ["null", "\"1\"", "[]", "{}", "[1,{\"a\":[]}]", "true"] {
            for field in ["lat", "fuel_pct", "ts"] {
                let payload = format!(r#"{{"{field}":{value}}}"#);
                let err = decode_str(&payload).expect_err(&payload);
                assert_eq!(err.reason(), "wrong_type", "{payload}: {err}");
                assert!(err.to_string().starts_with(field), "{payload}: {err}");
            }
        }
        for value in ["1", "\"x\"", "null", "[]"] {
            let payload = format!(r#"{{"sensors":{value}}}"#);
            let err = decode_str(&payload).expect_err(&payload);
            assert_eq!(err.reason(), "wrong_type", "{payload}: {err}");
        }
    }

    #[test]
    fn oversize_payload_is_refused_before_parsing() {
        let big = format!(r#"{{"sensors":{{"x":1}},"pad":"{}"}}"#, "a".repeat(5000));
        assert_eq!(decode_str(&big).expect_err("too big").reason(), "too_large");
    }

    #[test]
    fn json_output_names_the_asset_and_keeps_only_present_fields() {
        let decoded = decode_str(r#"{"ts":1799999999000,"fuel_pct":40}"#).expect("valid");
        let asset = AssetId::parse("ex1").expect("id");
        let json = decoded.point.to_json(&asset);
        assert_eq!(json["asset_id"], "ex1");
        assert_eq!(json["ts_ms"], 1_799_999_999_000u64);
        assert_eq!(json["fuel_pct"], 40.0);
        assert!(json.get("lat").is_none());
    }

    /// What a unit sends is what is kept, to the bit: a number of 16 or 17 significant
    /// digits is read as the `f64` nearest it (serde_json's `float_roundtrip`; without it
    /// `99999.99999999999` was stored as `100000.0`, trial T3), and written back as sent.
    #[test]
    fn every_number_is_kept_to_the_bit() {
        let sent: [f64; 4] = [
            99_999.999_999_999_99,
            0.300_000_000_000_000_04,
            1.234_567_890_123_456_7e-5,
            5e-324,
        ];
        for value in sent {
            let payload = format!(
                r#"{{"sensors":{{"x":{}}}}}"#,
                zmij::Buffer::new().format_finite(value)
            );
            let kept = decode_str(&payload).expect("valid").point.sensors["x"];
            assert_eq!(kept.to_bits(), value.to_bits(), "{payload}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_finite_sensor_reading_round_trips(value in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
            let text = zmij::Buffer::new().format_finite(value).to_owned();
            let payload = format!(r#"{{"sensors":{{"x":{text}}}}}"#);
            let kept = decode_str(&payload).expect("valid").point.sensors["x"];
            proptest::prop_assert_eq!(kept.to_bits(), value.to_bits(), "{}", payload);
        }
    }
}
