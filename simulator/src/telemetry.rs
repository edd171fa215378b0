//! What a simulated unit says: telemetry payloads in the shape of the MQTT contract
//! (DESIGN.md section 4), plausible values that stay inside the documented ranges, and the
//! two sensors (`seq`, `sent_us`) the scenarios use to find every point again.
//!
//! Kept apart from the MQTT plumbing so that scenarios and tests can build, tweak and break
//! payloads without a connection.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Sensor carrying a unit's sequence number, so stored points can be matched to sent ones
/// even when several share a value elsewhere.
pub const SEQ_SENSOR: &str = "seq";
/// Sensor carrying the send time in microseconds since the epoch, so whoever receives the
/// point (SSE, history) can measure latency without a side channel.
pub const SENT_US_SENSOR: &str = "sent_us";

/// A telemetry message as a unit publishes it on `/tenants/{d}/telemetry`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TelemetryPayload {
    /// Milliseconds since the epoch, the unit's clock; the gateway uses its own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_kmh: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_hours: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub odometer_km: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignition: Option<bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sensors: BTreeMap<String, f64>,
}

impl TelemetryPayload {
    /// Stamps the scenario sensors. Both values stay exact as JSON numbers (f64) for any
    /// realistic sequence number and for send times until the year 2255.
    pub fn with_tracking(mut self, seq: u64, sent_us: u64) -> Self {
        self.sensors.insert(SEQ_SENSOR.to_owned(), seq as f64);
        self.sensors
            .insert(SENT_US_SENSOR.to_owned(), sent_us as f64);
        self
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    now_us() / 1000
}

/// Microseconds since the epoch, now. A clock before 1970 counts as the epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The `ts` for a unit's next point: the clock, unless that would not be strictly after the
/// previous point, then one millisecond after it. Points of one unit thus never share a
/// timestamp, which keeps "stored exactly once" checkable by time as well as by `seq`.
pub fn next_unique_ts(previous: Option<u64>, now_ms: u64) -> u64 {
    match previous {
        Some(previous) if now_ms <= previous => previous.saturating_add(1),
        _ => now_ms,
    }
}

/// A JSON number read back as a whole non-negative integer, if it is one.
pub fn whole_number(value: f64) -> Option<u64> {
    let in_range = value >= 0.0 && value < u64::MAX as f64;
    (in_range && value.fract() == 0.0).then_some(value as u64)
}

/// RFC 3339 text for a millisecond timestamp, for `?from=`/`?to=` queries.
pub fn rfc3339_from_ms(ms: u64) -> Option<String> {
    let nanos = i128::from(ms) * 1_000_000;
    let moment = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
    moment
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Milliseconds since the epoch of an RFC 3339 time, as the API writes them; `None` when the
/// text is not RFC 3339 or lies before the epoch (nothing in the contract does).
pub fn ms_from_rfc3339(text: &str) -> Option<u64> {
    let moment =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(moment.unix_timestamp_nanos() / 1_000_000).ok()
}

/// A machine driving around: each call moves it a little, burns a little fuel and keeps
/// every field inside the contract's ranges. Seeded, so a scenario can be replayed.
#[derive(Debug, Clone)]
pub struct TrackGenerator {
    rng: StdRng,
    lat: f64,
    lon: f64,
    heading: f64,
    speed_kmh: f64,
    engine_hours: f64,
    odometer_km: f64,
    fuel_pct: f64,
    last_ts: Option<u64>,
}

impl TrackGenerator {
    /// A machine somewhere in central Europe, where a seed puts it.
    pub fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        Self {
            lat: rng.random_range(45.0..55.0),
            lon: rng.random_range(5.0..15.0),
            heading: rng.random_range(0.0..360.0),
            speed_kmh: rng.random_range(0.0..40.0),
            engine_hours: rng.random_range(0.0..5000.0),
            odometer_km: rng.random_range(0.0..100_000.0),
            fuel_pct: rng.random_range(20.0..100.0),
            last_ts: None,
            rng,
        }
    }

    /// The next point, stamped with a `ts` unique for this generator (see `next_unique_ts`).
    pub fn next_point(&mut self, now_ms: u64) -> TelemetryPayload {
        let ts = next_unique_ts(self.last_ts, now_ms);
        let elapsed_h = self
            .last_ts
            .map_or(0.0, |previous| (ts - previous) as f64 / 3_600_000.0);
        self.last_ts = Some(ts);

        self.heading = normalize_heading(self.heading + self.rng.random_range(-15.0..15.0));
        self.speed_kmh = (self.speed_kmh + self.rng.random_range(-5.0..5.0)).clamp(0.0, 60.0);
        let distance_km = self.speed_kmh * elapsed_h;
        let heading_rad = self.heading.to_radians();
        self.lat = (self.lat + distance_km * heading_rad.cos() / 111.0).clamp(-89.0, 89.0);
        self.lon = wrap_longitude(self.lon + distance_km * heading_rad.sin() / 70.0);
        self.odometer_km += distance_km;
        self.engine_hours += elapsed_h;
        self.fuel_pct = (self.fuel_pct - elapsed_h * 5.0).max(0.0);
        if self.fuel_pct < 5.0 {
            self.fuel_pct = 100.0;
        }

        TelemetryPayload {
            ts: Some(ts),
            lat: Some(round_to(self.lat, 6)),
            lon: Some(round_to(self.lon, 6)),
            speed_kmh: Some(round_to(self.speed_kmh, 1)),
            heading: Some(normalize_heading(round_to(self.heading, 1))),
            engine_hours: Some(round_to(self.engine_hours, 3)),
            odometer_km: Some(round_to(self.odometer_km, 3)),
            fuel_pct: Some(round_to(self.fuel_pct, 1)),
            ignition: Some(true),
            sensors: BTreeMap::new(),
        }
    }
}

/// Into `[0, 360)`; `rem_euclid` alone can round up to exactly 360.
fn normalize_heading(heading: f64) -> f64 {
    let wrapped = heading.rem_euclid(360.0);
    if wrapped >= 360.0 {
        0.0
    } else {
        wrapped
    }
}

fn wrap_longitude(lon: f64) -> f64 {
    let wrapped = (lon + 180.0).rem_euclid(360.0) - 180.0;
    wrapped.clamp(-180.0, 180.0)
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_uses_clock_when_it_moved_forward() {
        assert_eq!(next_unique_ts(None, 1000), 1000);
        assert_eq!(next_unique_ts(Some(999), 1000), 1000);
    }

    #[test]
    fn ts_is_bumped_when_clock_repeats_or_goes_back() {
        assert_eq!(next_unique_ts(Some(1000), 1000), 1001);
        assert_eq!(next_unique_ts(Some(1005), 1000), 1006);
    }

    #[test]
    fn generated_points_stay_in_contract_ranges_with_unique_ts() {
        let mut generator = TrackGenerator::new(7);
        let mut last = 0;
        for step in 0..10_000u64 {
            // Many points in the same millisecond, then big jumps: both paths of the clock.
            let point = generator.next_point(1_700_000_000_000 + (step / 10) * 60_000);
            let ts = point.ts.expect("ts");
            assert!(ts > last);
            last = ts;
            let lat = point.lat.expect("lat");
            let lon = point.lon.expect("lon");
            let heading = point.heading.expect("heading");
            let fuel = point.fuel_pct.expect("fuel");
            let speed = point.speed_kmh.expect("speed");
            assert!((-90.0..=90.0).contains(&lat));
            assert!((-180.0..=180.0).contains(&lon));
            assert!((0.0..360.0).contains(&heading), "heading {heading}");
            assert!((0.0..=100.0).contains(&fuel));
            assert!((0.0..=500.0).contains(&speed));
        }
    }

    #[test]
    fn payload_serializes_small_and_tracking_sensors_round_trip() {
        let payload = TrackGenerator::new(1)
            .next_point(1_700_000_000_000)
            .with_tracking(12, 1_700_000_000_000_123);
        let json = serde_json::to_vec(&payload).expect("encode");
        assert!(json.len() < 4096);
        let back: TelemetryPayload = serde_json::from_slice(&json).expect("decode");
        assert_eq!(back.sensors[SEQ_SENSOR], 12.0);
        assert_eq!(
            whole_number(back.sensors[SENT_US_SENSOR]),
            Some(1_700_000_000_000_123)
        );
    }

    #[test]
    fn whole_number_rejects_fractions_and_negatives() {
        assert_eq!(whole_number(3.0), Some(3));
        assert_eq!(whole_number(3.5), None);
        assert_eq!(whole_number(-1.0), None);
    }

    #[test]
    fn rfc3339_keeps_milliseconds() {
        assert_eq!(
            rfc3339_from_ms(1_735_689_600_123).as_deref(),
            Some("2025-01-01T00:00:00.123Z")
        );
    }

    #[test]
    fn rfc3339_parses_back_to_milliseconds() {
        assert_eq!(
            ms_from_rfc3339("2025-01-01T00:00:00.123Z"),
            Some(1_735_689_600_123)
        );
        assert_eq!(
            ms_from_rfc3339("2025-01-01T01:00:00+01:00"),
            Some(1_735_689_600_000)
        );
        assert_eq!(ms_from_rfc3339("1969-12-31T23:59:59Z"), None);
        assert_eq!(ms_from_rfc3339("yesterday"), None);
    }

    #[test]
    fn heading_never_reaches_360() {
        assert_eq!(normalize_heading(-1e-20), 0.0);
        assert_eq!(normalize_heading(360.0), 0.0);
        assert_eq!(normalize_heading(-90.0), 270.0);
    }
}
