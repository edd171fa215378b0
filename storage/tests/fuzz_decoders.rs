//! Fuzzing of what arrives from the network (issue 9), with proptest because cargo-fuzz
//! needs a nightly toolchain this project does not have: the telemetry and access-event
//! decoders get arbitrary bytes and arbitrary JSON-shaped payloads, and must answer every
//! input with a value or a clean error, never a panic. `scripts/fuzz.sh` runs the same
//! targets with many more cases for a bounded time.

use proptest::prelude::*;
use serde_json::{Map, Value};
use storage::time::Timestamp;
use storage::{access, telemetry};

const NOW: Timestamp = Timestamp(1_800_000_000_000);

/// JSON values of any shape, a few levels deep, with the field names units really use.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((field_name(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        // The point's own fields, then the access event's.
        prop::sample::select(
            telemetry::FIELDS
                .iter()
                .chain(&["key_id", "credential_hint", "result", "reason", "version"])
                .copied()
                .collect::<Vec<_>>()
        )
        .prop_map(str::to_owned),
        "[a-z_]{0,12}",
    ]
}

fn check_telemetry(bytes: &[u8]) {
    match telemetry::decode(bytes, NOW) {
        Ok(decoded) => {
            let point = decoded.point;
            for value in [
                point.lat,
                point.lon,
                point.fuel_pct,
                point.heading,
                point.speed_kmh,
            ]
            .into_iter()
            .flatten()
            {
                assert!(value.is_finite(), "accepted values are finite");
            }
            assert!(point.ts.0 <= NOW.0 + telemetry::MAX_FUTURE_MS);
        }
        Err(err) => assert!(!err.to_string().is_empty() && !err.reason().is_empty()),
    }
}

fn check_access(bytes: &[u8]) {
    match access::decode(bytes, NOW) {
        Ok(event) => assert!(event.ts.0 <= NOW.0 + telemetry::MAX_FUTURE_MS),
        Err(err) => assert!(!err.to_string().is_empty()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
        check_telemetry(&bytes);
        check_access(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let bytes = value.to_string().into_bytes();
        check_telemetry(&bytes);
        check_access(&bytes);
    }

    #[test]
    fn plausible_points_never_panic(fields in proptest::collection::vec((field_name(), json_value()), 0..12)) {
        let object: Map<String, Value> = fields.into_iter().collect();
        let bytes = Value::Object(object).to_string().into_bytes();
        check_telemetry(&bytes);
        check_access(&bytes);
    }
}
