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
    if !value.is_finite() {
        out.extend_from_slice(b"null");
    } else if !short_decimal(value, out) {
        out.extend_from_slice(zmij::Buffer::new().format_finite(value).as_bytes());
    }
}

/// The most decimals [`short_decimal`] writes.
const SHORT_DECIMALS: u32 = 8;
/// `10^SHORT_DECIMALS`, exact in an `f64`.
const SHORT_SCALE: f64 = 100_000_000.0;

/// Writes `value` when it is the `f64` nearest a decimal of at most [`SHORT_DECIMALS`]
/// decimals and at most 15 significant digits with `0.001 <= |value| < 10^7` (or zero),
/// which is what units send (coordinates in 5 or 6 decimals, fuel in 1, counters in 2),
/// and answers whether it did. A decimal of at most 15 significant digits is the one
/// shortest text that reads back as its nearest `f64` (two such decimals differ by more
/// than an `f64`'s spacing), so this is `zmij`'s text, found with a multiplication, a
/// division and integer formatting instead of the shortest-digits search (27 ns a float
/// in the export). Numbers out of that range, where `zmij` writes exponents, are left to
/// it. Property-tested against `zmij` below.
fn short_decimal(value: f64, out: &mut Vec<u8>) -> bool {
    let magnitude = value.abs();
    if !(1e-3..1e7).contains(&magnitude) {
        if value == 0.0 && value.is_sign_positive() {
            out.extend_from_slice(b"0.0");
            return true;
        }
        return false;
    }
    let scaled = (magnitude * SHORT_SCALE).round();
    // Exact: `scaled` < 10^15 < 2^53, and the quotient is the nearest `f64` to the decimal.
    if scaled / SHORT_SCALE != magnitude {
        return false;
    }
    let mut digits = scaled as u64;
    let mut decimals = SHORT_DECIMALS;
    while decimals > 0 && digits.is_multiple_of(10) {
        digits /= 10;
        decimals -= 1;
    }
    if value < 0.0 {
        out.push(b'-');
    }
    let mut text = itoa::Buffer::new();
    let text = text.format(digits).as_bytes();
    let decimals = decimals as usize;
    if decimals == 0 {
        out.extend_from_slice(text);
        out.extend_from_slice(b".0");
    } else if text.len() > decimals {
        let (whole, fraction) = text.split_at(text.len() - decimals);
        out.extend_from_slice(whole);
        out.push(b'.');
        out.extend_from_slice(fraction);
    } else {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', decimals - text.len()));
        out.extend_from_slice(text);
    }
    true
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
                sensors: sensors.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            })
    }

    fn zmij_text(value: f64) -> String {
        zmij::Buffer::new().format_finite(value).to_owned()
    }

    fn short_text(value: f64) -> Option<String> {
        let mut out = Vec::new();
        short_decimal(value, &mut out).then(|| String::from_utf8(out).expect("utf-8"))
    }

    #[test]
    fn short_decimals_are_written_as_zmij_writes_them() {
        let cases = [
            0.0,
            1.0,
            -1.0,
            12.5,
            0.001,
            0.00125,
            9_999_999.99999999,
            48.85837,
            2.35,
            0.1,
            0.3,
            100.0,
            1234567.8,
            -0.05,
            0.30000000000000004,
            1e-3,
            1e7,
        ];
        for value in cases {
            if let Some(text) = short_text(value) {
                assert_eq!(text, zmij_text(value), "{value:e}");
            }
        }
        assert_eq!(short_text(48.85837).as_deref(), Some("48.85837"));
        assert_eq!(short_text(100.0).as_deref(), Some("100.0"));
        assert_eq!(short_text(-0.05).as_deref(), Some("-0.05"));
        assert_eq!(short_text(0.30000000000000004), None, "17 digits: zmij's");
        assert_eq!(short_text(-0.0), None, "negative zero: zmij's");
        assert_eq!(short_text(1e7), None, "out of range: zmij's");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn short_decimal_agrees_with_zmij_on_decimals(
            mantissa in -1_000_000_000_000_000i64..1_000_000_000_000_000,
            decimals in 0i32..12,
        ) {
            let value = mantissa as f64 / 10f64.powi(decimals);
            if let Some(text) = short_text(value) {
                prop_assert_eq!(text, zmij_text(value));
            }
        }

        #[test]
        fn short_decimal_agrees_with_zmij_on_any_float(value in any::<f64>()) {
            if let Some(text) = short_text(value).filter(|_| value.is_finite()) {
                prop_assert_eq!(text, zmij_text(value));
            }
        }
    }

    proptest! {
        #[test]
        fn the_text_is_the_json_document_byte_for_byte(point in points()) {
            let asset = AssetId::parse("ex-1").expect("id");
            prop_assert_eq!(point.render_json(&asset), point.to_json(&asset).to_string());
        }
    }
}
