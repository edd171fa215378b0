//! A unit's telemetry point: decoding, validation and the JSON an account receives.
//!
//! Validation walks the JSON object field by field instead of deriving `Deserialize`, so
//! every refusal names the field and the rule (the device status shows it to the owner).

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
    pub sensors: BTreeMap<String, f64>,
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
    #[error("{field}: {value} is outside {range}")]
    OutOfRange {
        field: String,
        value: f64,
        range: &'static str,
    },
    #[error("ts: {ts} ms is more than {MAX_FUTURE_MS} ms ahead of the gateway clock")]
    FutureTs { ts: u64 },
    #[error("{field}: unknown field")]
    UnknownField { field: String },
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
        }
    }
}

/// A validated point whose `ts` may still be missing (the gateway then stamps it).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub unit_ts: Option<Timestamp>,
    pub point: Point,
}

fn number(field: &str, value: &Value) -> Result<f64, PointError> {
    match value.as_f64() {
        Some(n) if n.is_finite() => Ok(n),
        _ => Err(PointError::WrongType {
            field: field.to_owned(),
            expected: "a number",
        }),
    }
}

fn ranged(
    field: &str,
    value: &Value,
    ok: fn(f64) -> bool,
    range: &'static str,
) -> Result<f64, PointError> {
    let n = number(field, value)?;
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

/// Decodes and validates one payload. `now` is the gateway clock, used for the future
/// check only; stamping a missing `ts` is the caller's job (it keeps per-unit order).
pub fn decode(payload: &[u8], now: Timestamp) -> Result<Decoded, PointError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(PointError::TooLarge {
            size: payload.len(),
        });
    }
    let object: Map<String, Value> = match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(object)) => object,
        Ok(_) => {
            return Err(PointError::InvalidJson(
                "top level must be an object".into(),
            ))
        }
        Err(err) => return Err(PointError::InvalidJson(err.to_string())),
    };
    let mut point = Point {
        ts: now,
        lat: None,
        lon: None,
        speed_kmh: None,
        heading: None,
        engine_hours: None,
        odometer_km: None,
        fuel_pct: None,
        ignition: None,
        sensors: BTreeMap::new(),
    };
    let mut unit_ts = None;
    for (field, value) in &object {
        match field.as_str() {
            "ts" => {
                let ts = value.as_u64().ok_or_else(|| PointError::WrongType {
                    field: "ts".into(),
                    expected: "milliseconds since the epoch as a non-negative integer",
                })?;
                if ts < MIN_TS_MS {
                    return Err(PointError::OutOfRange {
                        field: "ts".into(),
                        value: ts as f64,
                        range: "2000-01-01 or later",
                    });
                }
                if ts > now.0.saturating_add(MAX_FUTURE_MS) {
                    return Err(PointError::FutureTs { ts });
                }
                unit_ts = Some(Timestamp(ts));
            }
            "lat" => {
                point.lat = Some(ranged(
                    field,
                    value,
                    |n| (-90.0..=90.0).contains(&n),
                    "[-90, 90]",
                )?)
            }
            "lon" => {
                point.lon = Some(ranged(
                    field,
                    value,
                    |n| (-180.0..=180.0).contains(&n),
                    "[-180, 180]",
                )?)
            }
            "speed_kmh" => {
                point.speed_kmh = Some(ranged(
                    field,
                    value,
                    |n| (0.0..=500.0).contains(&n),
                    "[0, 500]",
                )?)
            }
            "heading" => {
                point.heading = Some(ranged(
                    field,
                    value,
                    |n| (0.0..360.0).contains(&n),
                    "[0, 360)",
                )?)
            }
            "engine_hours" => {
                point.engine_hours = Some(ranged(
                    field,
                    value,
                    |n| (0.0..=1e6).contains(&n),
                    "[0, 1000000]",
                )?)
            }
            "odometer_km" => {
                point.odometer_km = Some(ranged(
                    field,
                    value,
                    |n| (0.0..=1e8).contains(&n),
                    "[0, 100000000]",
                )?)
            }
            "fuel_pct" => {
                point.fuel_pct = Some(ranged(
                    field,
                    value,
                    |n| (0.0..=100.0).contains(&n),
                    "[0, 100]",
                )?)
            }
            "ignition" => {
                point.ignition = Some(value.as_bool().ok_or_else(|| PointError::WrongType {
                    field: "ignition".into(),
                    expected: "true or false",
                })?)
            }
            "sensors" => point.sensors = sensors(value)?,
            other => {
                return Err(PointError::UnknownField {
                    field: other.to_owned(),
                })
            }
        }
    }
    if let Some(ts) = unit_ts {
        point.ts = ts;
    }
    Ok(Decoded { unit_ts, point })
}

fn sensors(value: &Value) -> Result<BTreeMap<String, f64>, PointError> {
    let object = value.as_object().ok_or_else(|| PointError::WrongType {
        field: "sensors".into(),
        expected: "an object of name -> number",
    })?;
    if object.len() > MAX_SENSORS {
        return Err(PointError::OutOfRange {
            field: "sensors".into(),
            value: object.len() as f64,
            range: "at most 64 sensors",
        });
    }
    let mut out = BTreeMap::new();
    for (name, reading) in object {
        let field = format!("sensors.{name}");
        if name.is_empty() || name.len() > MAX_SENSOR_NAME {
            return Err(PointError::OutOfRange {
                field,
                value: name.len() as f64,
                range: "a name of 1 to 64 bytes",
            });
        }
        out.insert(name.clone(), number(&field, reading)?);
    }
    Ok(out)
}

/// [`Point::render_json`]'s document: the fields of [`Point::to_json`] in the same
/// (alphabetical) order, borrowed rather than copied into a `Value` tree.
#[derive(Serialize)]
struct PointView<'a> {
    asset_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    engine_hours: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fuel_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    heading: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignition: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    odometer_km: Option<f64>,
    #[serde(skip_serializing_if = "no_sensors")]
    sensors: &'a BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    speed_kmh: Option<f64>,
    ts: String,
    ts_ms: u64,
}

fn no_sensors(sensors: &&BTreeMap<String, f64>) -> bool {
    sensors.is_empty()
}

impl Point {
    /// [`Point::to_json`] as text, written in one pass: the live path renders every accepted
    /// point, and building a `Value` tree first cost more than the rest of the fan-out.
    pub fn render_json(&self, asset_id: &AssetId) -> String {
        let view = PointView {
            asset_id: asset_id.as_str(),
            engine_hours: self.engine_hours,
            fuel_pct: self.fuel_pct,
            heading: self.heading,
            ignition: self.ignition,
            lat: self.lat,
            lon: self.lon,
            odometer_km: self.odometer_km,
            sensors: &self.sensors,
            speed_kmh: self.speed_kmh,
            ts: self.ts.to_rfc3339(),
            ts_ms: self.ts.0,
        };
        // Plain fields and finite numbers (decode refuses others) always serialize.
        serde_json::to_string(&view).unwrap_or_default()
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
                .map(|(name, value)| (name.clone(), Value::from(*value)))
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
}
