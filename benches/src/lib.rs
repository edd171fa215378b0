//! Benchmarks of the hot path. The criterion benches live in `benches/`; this library
//! holds the sample data they share, so every bench measures the same realistic point.

/// A realistic telemetry payload (about 250 bytes), as a unit would send it.
pub fn sample_payload(ts_ms: u64, seq: u64) -> Vec<u8> {
    format!(
        r#"{{"ts":{ts_ms},"lat":59.91,"lon":10.75,"speed_kmh":23.5,"heading":181.0,"engine_hours":1234.5,"odometer_km":88123.4,"fuel_pct":61.0,"ignition":true,"sensors":{{"hydraulic_bar":180.5,"coolant_c":88.0,"seq":{seq}}}}}"#
    )
    .into_bytes()
}

/// A unit driving, second `i` of its day (about 250 bytes, the nine fields of
/// [`sample_payload`]): a GPS track in 5 decimals, speed and heading changing every second,
/// counters rising, sensors wandering. Stores compress constant values to nothing, so the
/// bytes a stored day takes are measured on this, not on a point repeated.
pub fn drive_payload(ts_ms: u64, i: u64) -> Vec<u8> {
    let wobble = (i * 7919 % 13) as f64;
    let lat = 59.91234 + (i % 3600) as f64 * 0.00011;
    let lon = 10.75012 + (i % 3600) as f64 * 0.00007;
    format!(
        r#"{{"ts":{ts_ms},"lat":{lat:.5},"lon":{lon:.5},"speed_kmh":{:.1},"heading":{}.0,"engine_hours":{:.2},"odometer_km":{:.1},"fuel_pct":{}.0,"ignition":true,"sensors":{{"hydraulic_bar":{:.1},"coolant_c":{:.1},"seq":{i}}}}}"#,
        40.0 + wobble / 2.0,
        (180 + i * 3) % 360,
        1234.5 + i as f64 / 3600.0,
        88123.4 + i as f64 * 0.0125,
        100 - i / 900 % 100,
        180.5 + wobble,
        88.0 + wobble / 10.0,
    )
    .into_bytes()
}
