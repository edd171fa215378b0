//! The chunk codec: a driving day round-trips small, every bucket of points round-trips
//! bit for bit (proptest), and no bytes make decoding panic.

use proptest::prelude::*;

use super::*;

const START: u64 = 1_800_000_000_000 - 1_800_000_000_000 % BUCKET_MS;

/// A unit driving at 1 Hz: a GPS track with 5 decimals, speed and heading changing every
/// second, counters rising, three sensors (one of them only every tenth second).
fn drive(seconds: u64) -> Vec<Point> {
    (0..seconds)
        .map(|i| {
            let wobble = ((i * 7919) % 13) as f64;
            let mut point = Point::empty(Timestamp(START + i * 1000));
            point.lat = Some(((59.91234 + i as f64 * 0.00011) * 1e5).round() / 1e5);
            point.lon = Some(((10.75012 + i as f64 * 0.00007) * 1e5).round() / 1e5);
            point.speed_kmh = Some(40.0 + wobble / 2.0);
            point.heading = Some(((180 + i * 3) % 360) as f64);
            point.engine_hours = Some(((1234.5 + i as f64 / 3600.0) * 100.0).round() / 100.0);
            point.odometer_km = Some(((88123.4 + i as f64 * 0.0125) * 10.0).round() / 10.0);
            point.fuel_pct = Some(61.0 - (i / 300) as f64);
            point.ignition = Some(true);
            point
                .sensors
                .insert("coolant_c".into(), 88.0 + wobble / 10.0);
            point.sensors.insert("hydraulic_bar".into(), 180.5 + wobble);
            if i % 10 == 0 {
                point.sensors.insert("door".into(), (i % 20 / 10) as f64);
            }
            point
        })
        .collect()
}

#[test]
fn a_driving_unit_round_trips_in_under_twenty_bytes_a_point() {
    let points = drive(600);
    let record = encode(START, &points);
    assert_eq!(decode(START, &record).expect("decodes"), points);
    assert_eq!(count(&record).expect("count"), 600);
    let per_point = record.len() as f64 / 600.0;
    assert!(per_point < 20.0, "{per_point:.1} bytes a point");
}

#[test]
fn a_reader_of_part_of_a_chunk_gets_its_part_whole() {
    let points = drive(600);
    let record = encode(START, &points);
    let span = (START + 100_000, START + 200_000);
    let decoded = decode_for(START, &record, span).expect("decodes");
    assert_eq!(decoded.len(), 600);
    for (got, sent) in decoded.iter().zip(&points) {
        if (span.0..span.1).contains(&got.ts.0) {
            assert_eq!(got, sent, "inside the span: whole");
        } else {
            assert!(got.sensors.is_empty(), "outside: no sensors decoded");
            assert_eq!((got.ts, got.lat), (sent.ts, sent.lat));
        }
    }
}

#[test]
fn readings_of_one_millisecond_keep_their_order() {
    let mut first = Point::empty(Timestamp(START + 5));
    first.fuel_pct = Some(10.0);
    let mut second = first.clone();
    second.fuel_pct = Some(90.0);
    let points = vec![first, second, Point::empty(Timestamp(START + 9))];
    assert_eq!(
        decode(START, &encode(START, &points)).expect("decodes"),
        points
    );
}

#[test]
fn values_no_decimal_gives_back_are_kept_as_bits() {
    let mut points = drive(3);
    points[0].lat = Some(-0.0);
    points[1].lat = Some(1e-300);
    points[2].lat = Some(0.1 + 0.2);
    let decoded = decode(START, &encode(START, &points)).expect("decodes");
    for (got, want) in decoded.iter().zip(&points) {
        assert_eq!(got.lat.map(f64::to_bits), want.lat.map(f64::to_bits));
    }
}

#[test]
fn a_corrupt_chunk_is_an_error() {
    let record = encode(START, &drive(20));
    assert!(decode(START, &[]).is_err());
    assert!(decode(START, &record[..record.len() / 2]).is_err());
    let mut wrong_count = record.clone();
    wrong_count[1] = 21;
    assert!(decode(START, &wrong_count).is_err());
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1_000_000i64..1_000_000, 0u32..8).prop_map(|(m, e)| m as f64 / 10f64.powi(e as i32)),
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        Just(-0.0),
    ]
}

fn point() -> impl Strategy<Value = (u64, Point)> {
    (
        0u64..3_000,
        proptest::collection::vec(proptest::option::of(number()), 7),
        proptest::option::of(any::<bool>()),
        proptest::collection::btree_map("[a-c]{1,2}", number(), 0..3),
    )
        .prop_map(|(step, fixed, ignition, sensors)| {
            let mut point = Point::empty(Timestamp(0));
            (point.lat, point.lon, point.speed_kmh, point.heading) =
                (fixed[0], fixed[1], fixed[2], fixed[3]);
            (point.engine_hours, point.odometer_km, point.fuel_pct) =
                (fixed[4], fixed[5], fixed[6]);
            point.ignition = ignition;
            point.sensors = sensors.into_iter().map(|(k, v)| (k.into(), v)).collect();
            (step, point)
        })
}

proptest! {
    #[test]
    fn any_bucket_of_points_round_trips_bit_for_bit(steps in proptest::collection::vec(point(), 0..60)) {
        let mut ts = START;
        let points: Vec<Point> = steps
            .into_iter()
            .map(|(step, mut point)| {
                ts = (ts + step).min(START + BUCKET_MS - 1);
                point.ts = Timestamp(ts);
                point
            })
            .collect();
        let decoded = decode(START, &encode(START, &points)).expect("decodes");
        prop_assert_eq!(format!("{decoded:?}"), format!("{points:?}"));
        let bits = |p: &[Point]| p.iter().map(|p| p.lat.map(f64::to_bits)).collect::<Vec<_>>();
        prop_assert_eq!(bits(&decoded), bits(&points));
    }

    #[test]
    fn any_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(START, &bytes);
        let _ = count(&bytes);
    }

    #[test]
    fn a_flipped_byte_decodes_or_fails_without_panicking(at in 0usize..400, to in any::<u8>()) {
        let mut record = encode(START, &drive(30));
        let at = at % record.len();
        record[at] = to;
        let _ = decode(START, &record);
    }
}
