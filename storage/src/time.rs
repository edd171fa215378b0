//! Time as the store sees it: milliseconds since the Unix epoch, and a [`Clock`] so that
//! tests and the scheduler can move time without sleeping.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn millis(self) -> u64 {
        self.0
    }

    pub fn to_rfc3339(self) -> String {
        let mut out = String::with_capacity(24);
        self.write_rfc3339(&mut out);
        out
    }

    /// Appends [`Timestamp::to_rfc3339`] to `out`.
    pub fn write_rfc3339(self, out: &mut String) {
        match self.rfc3339_text() {
            Some(text) => out.push_str(text.as_str()),
            None => out.push_str(&self.0.to_string()),
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fff]Z` in UTC, the fraction only when the millisecond is not
    /// zero and without trailing zeros (what the `time` crate's RFC 3339 writes); `None`
    /// past year 9999, which RFC 3339 cannot write.
    ///
    /// Written by hand, on the stack, because every point rendered for history, exports and
    /// live streams carries one: `time`'s formatter cost more than the rest of the point.
    pub fn rfc3339_text(self) -> Option<Rfc3339Text> {
        const MS_PER_DAY: u64 = 86_400_000;
        let (days, in_day) = (self.0 / MS_PER_DAY, self.0 % MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        if year > 9999 {
            return None;
        }
        let (secs, millis) = (in_day / 1000, in_day % 1000);
        let mut text = *b"0000-00-00T00:00:00.000Z";
        put_digits(&mut text[0..4], year);
        put_digits(&mut text[5..7], month);
        put_digits(&mut text[8..10], day);
        put_digits(&mut text[11..13], secs / 3600);
        put_digits(&mut text[14..16], secs / 60 % 60);
        put_digits(&mut text[17..19], secs % 60);
        put_digits(&mut text[20..23], millis);
        let fraction = match millis {
            0 => 0,
            m if m % 100 == 0 => 2,
            m if m % 10 == 0 => 3,
            _ => 4,
        };
        text[19 + fraction] = b'Z';
        Some(Rfc3339Text {
            bytes: text,
            len: 20 + fraction as u8,
        })
    }

    /// Parses RFC 3339; times before the epoch are refused (no telemetry predates 1970).
    pub fn parse_rfc3339(raw: &str) -> Option<Timestamp> {
        let parsed = OffsetDateTime::parse(raw, &Rfc3339).ok()?;
        let millis = parsed.unix_timestamp_nanos() / 1_000_000;
        u64::try_from(millis).ok().map(Timestamp)
    }
}

/// A stamp's RFC 3339 text, held on the stack ([`Timestamp::rfc3339_text`]).
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339Text {
    bytes: [u8; 24],
    len: u8,
}

impl Rfc3339Text {
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

/// (year, month, day) of the proleptic Gregorian calendar for `days` since 1970-01-01
/// (Howard Hinnant's `civil_from_days`, <https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Writes `value` as decimal digits right-aligned in `slot`, zero-padded.
fn put_digits(slot: &mut [u8], mut value: u64) {
    for digit in slot.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Where "now" comes from. Production uses [`SystemClock`]; tests use [`ManualClock`].
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock {
    millis: AtomicU64,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            millis: AtomicU64::new(start.0),
        }
    }

    pub fn set(&self, to: Timestamp) {
        self.millis.store(to.0, Ordering::SeqCst);
    }

    pub fn advance(&self, by_millis: u64) {
        self.millis.fetch_add(by_millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the `time` crate's RFC 3339 formatter writes, which the hand-written one must match.
    fn by_time_crate(ts: Timestamp) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts.0) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| ts.0.to_string())
    }

    #[test]
    fn rfc3339_matches_the_time_crate_at_the_edges() {
        for ms in [
            0,
            1,
            10,
            100,
            120,
            999,
            86_399_999,
            951_782_400_000,     // 2000-02-29
            4_107_542_400_000,   // 2100-03-01: not a leap year
            253_402_300_799_999, // 9999-12-31T23:59:59.999Z
            253_402_300_800_000, // year 10000: digits
            u64::MAX,
        ] {
            assert_eq!(
                Timestamp(ms).to_rfc3339(),
                by_time_crate(Timestamp(ms)),
                "{ms}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn rfc3339_matches_the_time_crate(ms in 0u64..300_000_000_000_000) {
            proptest::prop_assert_eq!(Timestamp(ms).to_rfc3339(), by_time_crate(Timestamp(ms)));
        }
    }

    #[test]
    fn rfc3339_round_trip_keeps_milliseconds() {
        let ts = Timestamp(1_700_000_000_123);
        let text = ts.to_rfc3339();
        assert_eq!(text, "2023-11-14T22:13:20.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&text), Some(ts));
        assert_eq!(
            Timestamp::parse_rfc3339("2023-11-14T23:13:20.123+01:00"),
            Some(ts)
        );
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
        assert_eq!(Timestamp::parse_rfc3339("1969-12-31T23:59:59Z"), None);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp(10));
        assert_eq!(clock.now(), Timestamp(10));
        clock.advance(5);
        assert_eq!(clock.now(), Timestamp(15));
    }
}
