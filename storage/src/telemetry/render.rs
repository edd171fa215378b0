//! A point as JSON text, written by hand: the document [`Point::to_json`] builds (fields in
//! alphabetical order, absent fields left out, `sensors` only when there are any), byte for
//! byte, without serde's per-token calls. Every point of a history page, an export and a
//! live stream goes through here; through `serde_json::to_writer` the small writes and the
//! serializer's state cost as much as the numbers.
//!
//! Numbers are written as serde_json writes them (shortest round-trip text through the same
//! `zmij` crate, `itoa` for integers), strings with JSON's escapes (RFC 8259 §7).

use super::Point;

/// Appends `point` under `asset_id` to `out`.
pub fn point(point: &Point, asset_id: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"asset_id\":");
    string(asset_id, out);
    number(b",\"engine_hours\":", point.engine_hours, out);
    number(b",\"fuel_pct\":", point.fuel_pct, out);
    number(b",\"heading\":", point.heading, out);
    match point.ignition {
        Some(true) => out.extend_from_slice(b",\"ignition\":true"),
        Some(false) => out.extend_from_slice(b",\"ignition\":false"),
        None => {}
    }
    number(b",\"lat\":", point.lat, out);
    number(b",\"lon\":", point.lon, out);
    number(b",\"odometer_km\":", point.odometer_km, out);
    if !point.sensors.is_empty() {
        out.extend_from_slice(b",\"sensors\":{");
        for (i, (name, value)) in point.sensors.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(name, out);
            out.push(b':');
            float(*value, out);
        }
        out.push(b'}');
    }
    number(b",\"speed_kmh\":", point.speed_kmh, out);
    out.extend_from_slice(b",\"ts\":\"");
    match point.ts.rfc3339_text() {
        Some(text) => out.extend_from_slice(text.as_str().as_bytes()),
        None => out.extend_from_slice(itoa::Buffer::new().format(point.ts.0).as_bytes()),
    }
    out.extend_from_slice(b"\",\"ts_ms\":");
    out.extend_from_slice(itoa::Buffer::new().format(point.ts.0).as_bytes());
    out.push(b'}');
}

/// `key` (already quoted, with its comma and colon) and `value`, when there is a value.
fn number(key: &[u8], value: Option<f64>, out: &mut Vec<u8>) {
    if let Some(value) = value {
        out.extend_from_slice(key);
        float(value, out);
    }
}

/// A finite number as serde_json writes it; `null` otherwise, as serde_json does (decoding
/// refuses non-finite numbers, so a stored point has none).
fn float(value: f64, out: &mut Vec<u8>) {
    if value.is_finite() {
        out.extend_from_slice(zmij::Buffer::new().format_finite(value).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// `text` as a JSON string: copied as is when nothing in it needs an escape (the usual
/// case: ids, stamps and sensor names), through serde_json's escaping otherwise.
fn string(text: &str, out: &mut Vec<u8>) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(out, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AssetId;
    use crate::time::Timestamp;
    use proptest::prelude::*;

    fn reading() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            Just(None),
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(Some),
            (-100_000i64..100_000, 0u32..6)
                .prop_map(|(m, e)| Some(m as f64 / 10f64.powi(e as i32))),
        ]
    }

    fn points() -> impl Strategy<Value = Point> {
        (
            0u64..300_000_000_000_000,
            proptest::collection::vec(reading(), 7),
            proptest::option::of(any::<bool>()),
            proptest::collection::btree_map("\\PC{0,12}|[a-z\"\\\\\u{1}]{1,6}", -1e9f64..1e9, 0..4),
        )
            .prop_map(|(ts, fixed, ignition, sensors)| Point {
                ts: Timestamp(ts),
                lat: fixed[0],
                lon: fixed[1],
                speed_kmh: fixed[2],
                heading: fixed[3],
                engine_hours: fixed[4],
                odometer_km: fixed[5],
                fuel_pct: fixed[6],
                ignition,
                sensors,
            })
    }

    proptest! {
        #[test]
        fn the_text_is_the_json_document_byte_for_byte(point in points()) {
            let asset = AssetId::parse("ex-1").expect("id");
            prop_assert_eq!(point.render_json(&asset), point.to_json(&asset).to_string());
        }
    }
}
