//! How a key run judges what it saw of one change, without I/O so the rules can be tested
//! exactly: which key sets count as "the change arrived", and whether an answer's
//! `distribution` agrees with the units.
//!
//! An answer's `distribution` must name every unit of the key's assets exactly once. A unit listed `delivered` must
//! have taken the change before the answer (it acked that set, and the gateway waited for
//! the ack). A unit listed `pending` must not have taken it well before the answer: a
//! unit that acked in time is delivered. "Well before" allows `ACK_RACE_SLACK_US`, because an
//! ack may reach the gateway just after its bounded wait ended.

use std::collections::{HashMap, HashSet};

use crate::api::{DeviceId, Distribution, KeyId};
use crate::scenario::ErrorLog;
use crate::unit::{HeldKey, KeySet};

/// How long before the answer a `pending` unit may have taken the change without that
/// being a contradiction (see the module doc).
const ACK_RACE_SLACK_US: u64 = 50_000;
/// Examples quoted per kind of problem; the count says how many there were.
const EXAMPLES: usize = 3;

/// What a unit's set must show once a change reached it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expect {
    /// These keys, told apart by `valid_to` (so an edit of the end is seen); the other
    /// fields are compared afterwards, so a wrong field is reported as such rather than as
    /// a change that never arrived.
    Present(Vec<HeldKey>),
    /// None of these keys.
    Absent(Vec<KeyId>),
}

impl Expect {
    pub(super) fn accepts(&self, set: &KeySet) -> bool {
        match self {
            Expect::Present(keys) => keys.iter().all(|key| {
                set.get(&key.id)
                    .is_some_and(|held| held.valid_to_ms == key.valid_to_ms)
            }),
            Expect::Absent(ids) => ids.iter().all(|id| !set.contains(id)),
        }
    }

    /// Fields of an accepted set that differ from the API's view of the keys.
    pub(super) fn content_problems(&self, set: &KeySet) -> Vec<String> {
        let Expect::Present(keys) = self else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|key| {
                let held = set.get(&key.id)?;
                (held != key).then(|| format!("holds {held:?} where the API shows {key:?}"))
            })
            .collect()
    }
}

/// What the run saw of one affected unit, for judging a distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UnitSeen {
    pub(super) device: DeviceId,
    pub(super) online: bool,
    /// When it took the change, if it did.
    pub(super) taken_us: Option<u64>,
}

/// Where `distribution` disagrees with what the units saw (see the module doc).
pub(super) fn distribution_problems(
    distribution: &Distribution,
    units: &[UnitSeen],
    answered_us: u64,
) -> Vec<String> {
    let mut problems = Vec::new();
    let by_device: HashMap<&DeviceId, &UnitSeen> =
        units.iter().map(|unit| (&unit.device, unit)).collect();
    let mut listed = HashSet::new();
    for device in distribution.all() {
        if !listed.insert(device) {
            problems.push(format!("names {device} twice"));
        } else if !by_device.contains_key(device) {
            problems.push(format!("names {device}, which the change does not concern"));
        }
    }
    for unit in units {
        if !listed.contains(&unit.device) {
            problems.push(format!("leaves out {}", unit.device));
        }
    }
    for device in &distribution.delivered {
        let Some(unit) = by_device.get(device) else {
            continue;
        };
        match unit.taken_us {
            Some(taken) if unit.online && taken <= answered_us => {}
            Some(taken) if unit.online => problems.push(format!(
                "lists {device} as delivered, but it took the change {} ms after the answer",
                (taken - answered_us) / 1000
            )),
            _ if !unit.online => problems.push(format!(
                "lists {device} as delivered, but the unit was switched off"
            )),
            _ => problems.push(format!(
                "lists {device} as delivered, but the unit never took the change"
            )),
        }
    }
    for device in &distribution.pending {
        let Some(unit) = by_device.get(device) else {
            continue;
        };
        if let Some(taken) = unit.taken_us {
            if unit.online && taken + ACK_RACE_SLACK_US <= answered_us {
                problems.push(format!(
                    "lists {device} as pending, but it took and acked the change {} ms before \
                     the answer",
                    (answered_us - taken) / 1000
                ));
            }
        }
    }
    problems
}

/// One problem message for many units: the count and a few examples.
pub(super) fn push_summary(log: &ErrorLog, what: &str, problems: &[String]) {
    if problems.is_empty() {
        return;
    }
    let examples: Vec<&str> = problems.iter().take(EXAMPLES).map(String::as_str).collect();
    log.push(format!(
        "{what}: {} problems, e.g. {}",
        problems.len(),
        examples.join("; ")
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AccessType;

    fn key(id: &str, valid_to_ms: u64) -> HeldKey {
        HeldKey {
            id: KeyId::new(id),
            access_type: AccessType::KeypadPin,
            credential: "123456".into(),
            valid_from_ms: 0,
            valid_to_ms,
        }
    }

    #[test]
    fn present_is_told_apart_by_valid_to_and_content_is_checked_after() {
        let set = KeySet {
            version: 3,
            keys: vec![key("k1", 10), key("k2", 20)],
        };
        assert!(Expect::Present(vec![key("k1", 10)]).accepts(&set));
        assert!(!Expect::Present(vec![key("k1", 11)]).accepts(&set));
        assert!(!Expect::Present(vec![key("k3", 10)]).accepts(&set));
        let mut other_pin = key("k2", 20);
        other_pin.credential = "654321".into();
        let expect = Expect::Present(vec![other_pin]);
        assert!(expect.accepts(&set));
        assert_eq!(expect.content_problems(&set).len(), 1);
        assert!(Expect::Absent(vec![KeyId::new("k3")]).accepts(&set));
        assert!(!Expect::Absent(vec![KeyId::new("k3"), KeyId::new("k2")]).accepts(&set));
        assert!(Expect::Absent(Vec::new()).content_problems(&set).is_empty());
    }

    fn seen(device: &str, online: bool, taken_us: Option<u64>) -> UnitSeen {
        UnitSeen {
            device: DeviceId::new(device),
            online,
            taken_us,
        }
    }

    fn distribution(delivered: &[&str], pending: &[&str]) -> Distribution {
        Distribution {
            delivered: delivered.iter().map(|d| DeviceId::new(*d)).collect(),
            pending: pending.iter().map(|d| DeviceId::new(*d)).collect(),
        }
    }

    const ANSWERED: u64 = 1_000_000;

    #[test]
    fn an_honest_distribution_has_no_problems() {
        let units = [
            seen("d0", true, Some(ANSWERED - 5_000)),
            seen("d1", false, None),
            seen("d2", true, Some(ANSWERED + 5_000)),
            seen("d3", true, Some(ANSWERED - 10_000)),
        ];
        // d3 acked just before the answer but after the gateway stopped waiting: allowed.
        let honest = distribution(&["d0"], &["d1", "d2", "d3"]);
        assert_eq!(
            distribution_problems(&honest, &units, ANSWERED),
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_contradiction_is_named() {
        let units = [
            seen("d0", true, Some(ANSWERED + 5_000)),
            seen("d1", false, None),
            seen("d2", true, None),
            seen("d3", true, Some(ANSWERED - 500_000)),
            seen("d4", true, Some(1)),
        ];
        let claimed = distribution(&["d0", "d1", "d2", "d9"], &["d3", "d3"]);
        let problems = distribution_problems(&claimed, &units, ANSWERED);
        let expected = [
            "names d9, which the change does not concern",
            "names d3 twice",
            "leaves out d4",
            "lists d0 as delivered, but it took the change 5 ms after the answer",
            "lists d1 as delivered, but the unit was switched off",
            "lists d2 as delivered, but the unit never took the change",
            "lists d3 as pending, but it took and acked the change 500 ms before the answer",
        ];
        for message in expected {
            assert!(
                problems.iter().any(|problem| problem == message),
                "{message:?} not in {problems:?}"
            );
        }
        assert_eq!(problems.len(), expected.len() + 1, "{problems:?}");
    }

    #[test]
    fn summaries_count_and_quote_a_few() {
        let log = ErrorLog::default();
        push_summary(&log, "x", &[]);
        let problems: Vec<String> = (0..5).map(|index| format!("p{index}")).collect();
        push_summary(&log, "create", &problems);
        let entries = log.into_entries();
        assert_eq!(entries, ["create: 5 problems, e.g. p0; p1; p2"]);
    }
}
