//! Failed authentications, rate limited per source address: a guesser gets 429 with a
//! `Retry-After` instead of unlimited tries, and nobody else is slowed.
//!
//! The source is the peer address; a `X-Forwarded-For` header counts only when the peer is
//! one of the configured trusted proxies (then its rightmost entry, the address the proxy
//! itself saw). A fixed window per source: at most `max` failures (default
//! [`MAX_FAILURES`], `--auth-failures-per-minute`) per [`WINDOW`]. The table is bounded ([`MAX_SOURCES`]); when full, expired windows are
//! dropped first, and a new source beyond that is not tracked (and counted as throttled
//! work by the caller's metrics, never let through unbounded memory).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures one source may make per window before it is refused, by default.
pub const MAX_FAILURES: u32 = 20;
/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Sources tracked at once.
pub const MAX_SOURCES: usize = 65_536;

/// Per-source failure counts (see the module docs).
#[derive(Debug)]
pub struct FailureLimiter {
    max: u32,
    sources: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    /// At most `max` failures per source per [`WINDOW`].
    pub fn new(max: u32) -> FailureLimiter {
        FailureLimiter {
            max,
            sources: Mutex::default(),
        }
    }

    /// `Err(retry_after)` when `source` used up its failures in the current window.
    pub fn check(&self, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        match sources.get(&source) {
            Some((start, count)) if *count >= self.max && now < *start + WINDOW => {
                Err((*start + WINDOW).saturating_duration_since(now))
            }
            _ => Ok(()),
        }
    }

    /// Counts one failed authentication from `source`.
    pub fn failed(&self, source: IpAddr, now: Instant) {
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&source) {
            sources.retain(|_, (start, _)| now < *start + WINDOW);
            if sources.len() >= MAX_SOURCES {
                return;
            }
        }
        let entry = sources.entry(source).or_insert((now, 0));
        if now >= entry.0 + WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

/// The address a request's failures are counted under: the peer, or for a trusted proxy
/// the rightmost `X-Forwarded-For` entry.
pub fn source_of(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    forwarded_for
        .and_then(|header| header.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .or(Some(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().expect("ip")
    }

    #[test]
    fn a_source_is_refused_after_its_failures_until_the_window_ends() {
        let limiter = FailureLimiter::new(MAX_FAILURES);
        let start = Instant::now();
        let (guesser, other) = (ip("192.0.2.1"), ip("192.0.2.2"));
        for _ in 0..MAX_FAILURES {
            assert!(limiter.check(guesser, start).is_ok());
            limiter.failed(guesser, start);
        }
        let wait = limiter.check(guesser, start).expect_err("refused");
        assert_eq!(wait, WINDOW);
        assert!(limiter.check(other, start).is_ok(), "others are not slowed");
        let later = start + WINDOW;
        assert!(limiter.check(guesser, later).is_ok(), "a new window");
        limiter.failed(guesser, later);
        assert!(limiter.check(guesser, later).is_ok());
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.1");
        let header = Some("198.51.100.7, 203.0.113.9");
        assert_eq!(
            source_of(Some(ip("192.0.2.5")), header, &[proxy]),
            Some(ip("192.0.2.5"))
        );
        assert_eq!(
            source_of(Some(proxy), header, &[proxy]),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(source_of(Some(proxy), Some("junk"), &[proxy]), Some(proxy));
        assert_eq!(source_of(Some(proxy), None, &[proxy]), Some(proxy));
    }

    #[test]
    fn the_table_stays_bounded() {
        let limiter = FailureLimiter::new(MAX_FAILURES);
        let now = Instant::now();
        for n in 0..(MAX_SOURCES as u32 + 10) {
            limiter.failed(IpAddr::from(n.to_be_bytes()), now);
        }
        assert!(limiter.sources.lock().expect("lock").len() <= MAX_SOURCES);
    }
}
