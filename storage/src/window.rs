//! "May this account see this point": the one predicate history, latest, live SSE, the
//! account MQTT topics and mirrors all use (rule 2 for grants, rule 5 for mirrors).
//!
//! An account's sight of an asset is a set of periods: all time for its owner, the grant's
//! `[from, until)` for a grantee, the periods the source shared its telemetry for a mirror.
//! A point is shown when its own `ts` lies in one of them — never judged by when it
//! arrives: a unit's buffered upload stamped before a grant started stays hidden from the
//! grantee, live and in history alike. Live delivery also needs the access in force at
//! arrival (not removed, not ended); a removal re-binds the unit's actor, so a removed
//! account is no longer asked at all.

use crate::time::Timestamp;

/// The periods `[from, until)` of an account's sight of one asset, oldest first; only the
/// last may be open (`until: None`). Never empty: no sight is no audience member at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    periods: Vec<(Timestamp, Option<Timestamp>)>,
}

impl Window {
    /// All of time: an owner's sight.
    pub fn always() -> Window {
        Window::between(Timestamp(0), None)
    }

    /// One period: a grant's window.
    pub fn between(from: Timestamp, until: Option<Timestamp>) -> Window {
        Window {
            periods: vec![(from, until)],
        }
    }

    /// Several periods (a mirror's shared periods); `None` when there is none.
    pub fn periods(periods: Vec<(Timestamp, Option<Timestamp>)>) -> Option<Window> {
        (!periods.is_empty()).then_some(Window { periods })
    }

    /// Whether a point stamped `ts` is inside this sight.
    pub fn shows(&self, ts: Timestamp) -> bool {
        shows(&self.periods, ts)
    }

    /// Whether the access is in force at `now`: its latest period has started and not
    /// ended. A point arriving when it is not is delivered to nobody under this window.
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.periods
            .last()
            .is_some_and(|(from, until)| *from <= now && until.is_none_or(|until| now < until))
    }

    /// The smallest `[from, to)` holding every period (`to` is `u64::MAX` when the last is
    /// open): where a history scan starts and stops before [`Window::shows`] filters.
    pub fn span(&self) -> (Timestamp, Timestamp) {
        let from = self.periods.first().map_or(Timestamp(u64::MAX), |p| p.0);
        let to = self
            .periods
            .last()
            .map_or(Timestamp(0), |p| p.1.unwrap_or(Timestamp(u64::MAX)));
        (from, to)
    }

    /// When the latest period ends (`None`: open).
    pub fn until(&self) -> Option<Timestamp> {
        self.periods.last().and_then(|p| p.1)
    }
}

/// Whether `ts` lies in one of `periods` (`[from, until)`, `None`: open): the one test
/// every sight makes of a point, [`Window::shows`] and a mirror's alike.
pub fn shows(periods: &[(Timestamp, Option<Timestamp>)], ts: Timestamp) -> bool {
    periods
        .iter()
        .any(|(from, until)| *from <= ts && until.is_none_or(|until| ts < until))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp(1_000_000);

    #[test]
    fn a_grant_shows_points_stamped_inside_it_whenever_they_arrive() {
        let grant = Window::between(T, Some(Timestamp(T.0 + 100)));
        assert!(!grant.shows(Timestamp(T.0 - 1)), "stamped before the start");
        assert!(grant.shows(T));
        assert!(grant.shows(Timestamp(T.0 + 99)));
        assert!(!grant.shows(Timestamp(T.0 + 100)), "the end is exclusive");
        assert!(grant.in_force(Timestamp(T.0 + 50)));
        assert!(!grant.in_force(Timestamp(T.0 + 100)));
        assert!(!grant.in_force(Timestamp(T.0 - 1)), "not started yet");
    }

    #[test]
    fn a_mirror_shows_every_shared_period_and_is_in_force_while_the_last_is_open() {
        let mirror = Window::periods(vec![
            (Timestamp(10), Some(Timestamp(20))),
            (Timestamp(30), None),
        ])
        .expect("periods");
        assert!(mirror.shows(Timestamp(15)));
        assert!(!mirror.shows(Timestamp(25)), "between two shares");
        assert!(mirror.shows(Timestamp(35)));
        assert!(mirror.in_force(Timestamp(40)));
        assert_eq!(mirror.span(), (Timestamp(10), Timestamp(u64::MAX)));
        let stopped = Window::periods(vec![(Timestamp(10), Some(Timestamp(20)))]).expect("periods");
        assert!(!stopped.in_force(Timestamp(15 + 10)));
        assert_eq!(Window::periods(Vec::new()), None);
    }

    #[test]
    fn an_owner_sees_all_of_time() {
        let owner = Window::always();
        assert!(owner.shows(Timestamp(0)) && owner.shows(Timestamp(u64::MAX - 1)));
        assert!(owner.in_force(T));
        assert_eq!(owner.until(), None);
    }
}
