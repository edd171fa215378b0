//! Benchmarks of the hot path. The criterion benches live in `benches/`; this library
//! holds the sample data they share, so every bench measures the same realistic point.

/// A realistic telemetry payload (about 250 bytes), as a unit would send it.
pub fn sample_payload(ts_ms: u64, seq: u64) -> Vec<u8> {
    format!(
        r#"{{"ts":{ts_ms},"lat":59.91,"lon":10.75,"speed_kmh":23.5,"heading":181.0,"engine_hours":1234.5,"odometer_km":88123.4,"fuel_pct":61.0,"ignition":true,"sensors":{{"hydraulic_bar":180.5,"coolant_c":88.0,"seq":{seq}}}}}"#
    )
    .into_bytes()
}
