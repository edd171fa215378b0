//! The keys a key run creates and the rules it judges the gateway's answers and the units'
//! decisions by, worked out without I/O so they can be tested exactly.
//!
//! The plan covers what the contract distinguishes: a key spanning every asset, a personal
//! key of an operator, a DualID tag whose id the run chooses, a key that starts in the
//! future, and a short-lived key that ends during the run (the scheduler must drop it off
//! the units). All windows are whole seconds, so a gateway that stores seconds shows exactly
//! the times the run asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::api::{AccessResult, AccessType, AssetId, DenyReason, KeyView, NewKey, OperatorId};
use crate::telemetry::rfc3339_from_ms;
use crate::unit::Decision;

const SECOND: u64 = 1_000;
const HOUR: u64 = 3_600 * SECOND;

/// Why a planned key exists; also how the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Valid from now for `short_lived`: ends during the run.
    ShortLived,
    /// Every asset, valid now for an hour: the widest fan-out.
    FleetWide,
    /// An operator's digital key on half of the assets.
    Personal,
    /// A DualID tag on every other asset; deleted during the run.
    Tag,
    /// Every asset, valid from in an hour: held but not yet usable.
    Future,
}

impl Role {
    pub(super) fn label(self) -> &'static str {
        match self {
            Role::ShortLived => "short-lived",
            Role::FleetWide => "fleet-wide",
            Role::Personal => "personal",
            Role::Tag => "tag",
            Role::Future => "future",
        }
    }
}

/// One key the run will create, by machine index rather than asset id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PlannedKey {
    pub(super) role: Role,
    pub(super) access_type: AccessType,
    pub(super) personal: bool,
    pub(super) machines: Vec<usize>,
    pub(super) valid_from_ms: u64,
    pub(super) valid_to_ms: u64,
    /// Only for the DualID tag; the gateway generates the others.
    pub(super) credential: Option<String>,
}

impl PlannedKey {
    /// The request body; `None` for a personal key without an operator, or a time that
    /// cannot be written (neither happens with a working clock and operator endpoint).
    pub(super) fn request(
        &self,
        assets: &[AssetId],
        operator: Option<&OperatorId>,
        run_id: &str,
    ) -> Option<NewKey> {
        let asset_ids = self
            .machines
            .iter()
            .map(|&machine| assets.get(machine).cloned())
            .collect::<Option<Vec<_>>>()?;
        let from = rfc3339_from_ms(self.valid_from_ms)?;
        let to = rfc3339_from_ms(self.valid_to_ms)?;
        let key = if self.personal {
            NewKey::personal(operator?.clone(), asset_ids, self.access_type, from, to)
        } else {
            NewKey::shared(asset_ids, self.access_type, from, to)
        };
        let key = key.with_description(format!("sim {run_id} {}", self.role.label()));
        Some(match &self.credential {
            Some(credential) => key.with_credential(credential.clone()),
            None => key,
        })
    }
}

/// The run's keys in creation order: the short-lived and fleet-wide keys first, so the
/// unit kept offline misses both and must get the second on reconnect.
pub(super) fn plan_keys(
    run_id: &str,
    units: usize,
    now_ms: u64,
    short_lived: Duration,
) -> Vec<PlannedKey> {
    let now_s = now_ms - now_ms % SECOND;
    // Started a little in the past, so "valid now" holds whatever the clocks say.
    let started = now_s.saturating_sub(60 * SECOND);
    let short_ms = u64::try_from(short_lived.as_millis()).unwrap_or(u64::MAX);
    let short_end = now_ms.saturating_add(short_ms).div_ceil(SECOND) * SECOND;
    let every: Vec<usize> = (0..units).collect();
    let half: Vec<usize> = (0..units.div_ceil(2)).collect();
    let even: Vec<usize> = (0..units).step_by(2).collect();
    let key = |role, access_type, machines: &Vec<usize>, from, to| PlannedKey {
        role,
        access_type,
        personal: false,
        machines: machines.clone(),
        valid_from_ms: from,
        valid_to_ms: to,
        credential: None,
    };
    vec![
        key(
            Role::ShortLived,
            AccessType::KeypadPin,
            &every,
            now_s.saturating_sub(SECOND),
            short_end,
        ),
        key(
            Role::FleetWide,
            AccessType::KeypadPin,
            &every,
            started,
            now_s + HOUR,
        ),
        PlannedKey {
            personal: true,
            ..key(
                Role::Personal,
                AccessType::DigitalKey,
                &half,
                started,
                now_s + 24 * HOUR,
            )
        },
        PlannedKey {
            credential: Some(tag_id(run_id)),
            ..key(
                Role::Tag,
                AccessType::DualidTag,
                &even,
                started,
                now_s + HOUR,
            )
        },
        key(
            Role::Future,
            AccessType::KeypadPin,
            &every,
            now_s + HOUR,
            now_s + 2 * HOUR,
        ),
    ]
}

/// The run's DualID tag id: unique per run, letters and digits like a printed tag id.
pub(super) fn tag_id(run_id: &str) -> String {
    format!("SIMTAG{}", run_id.to_ascii_uppercase())
}

/// A credential no key has: it contains letters, so it is never a PIN, and its prefix
/// differs from the tag's.
pub(super) fn unknown_credential(run_id: &str, machine: usize) -> String {
    format!("NOKEY{}X{machine}", run_id.to_ascii_uppercase())
}

/// Where the gateway's answer to a create differs from what was asked, one message each.
pub(super) fn check_created(
    planned: &PlannedKey,
    requested: &NewKey,
    view: &KeyView,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut differs = |what: &str, asked: String, got: String| {
        if asked != got {
            problems.push(format!("{what}: asked {asked}, got {got}"));
        }
    };
    differs(
        "personal",
        requested.personal.to_string(),
        view.personal.to_string(),
    );
    if requested.personal {
        differs(
            "operator",
            format!("{:?}", requested.operator_id),
            format!("{:?}", view.operator_id),
        );
    }
    let asked: BTreeSet<&AssetId> = requested.asset_ids.iter().collect();
    let got: BTreeSet<&AssetId> = view.asset_ids.iter().collect();
    differs(
        "assets",
        format!("{} assets", asked.len()),
        if asked == got {
            format!("{} assets", asked.len())
        } else {
            format!("{} assets, not the same ones", got.len())
        },
    );
    differs(
        "access type",
        requested.access_type.to_string(),
        view.access_type.to_string(),
    );
    differs(
        "valid_from",
        format!("{:?}", Some(planned.valid_from_ms)),
        format!("{:?}", view.valid_from_ms()),
    );
    differs(
        "valid_to",
        format!("{:?}", Some(planned.valid_to_ms)),
        format!("{:?}", view.valid_to_ms()),
    );
    match view.access_type {
        AccessType::KeypadPin => {
            let pin = &view.credential;
            if pin.len() != 6 || !pin.bytes().all(|byte| byte.is_ascii_digit()) {
                problems.push(format!("keypad PIN {pin:?} is not 6 digits"));
            }
        }
        AccessType::DualidTag => differs(
            "tag id",
            format!("{:?}", requested.credential),
            format!("{:?}", Some(&view.credential)),
        ),
        AccessType::DigitalKey => {
            if view.credential.is_empty() {
                problems.push("digital key without a secret".to_owned());
            }
        }
    }
    problems
}

/// Keypad PINs used by more than one key of the same asset (the gateway must keep them
/// unique per asset), as `(asset, pin)`.
pub(super) fn duplicate_pins(keys: &[KeyView]) -> Vec<(AssetId, String)> {
    let mut seen: BTreeMap<(&AssetId, &str), usize> = BTreeMap::new();
    for key in keys
        .iter()
        .filter(|key| key.access_type == AccessType::KeypadPin)
    {
        for asset in &key.asset_ids {
            *seen.entry((asset, key.credential.as_str())).or_default() += 1;
        }
    }
    seen.into_iter()
        .filter(|(_, count)| *count > 1)
        .map(|((asset, pin), _)| (asset.clone(), pin.to_owned()))
        .collect()
}

/// Whether a unit's decision agrees with the one the API's keys imply.
///
/// One difference is allowed: an ended key. The unit holds only keys valid now or later,
/// so once the scheduler dropped a key the unit says `unknown_credential` where a listing
/// that still shows the key implies `expired`, and while the drop is on its way the unit
/// may still say `expired` about a key the listing no longer shows. Both are a denial for
/// the same reason; anything else must match exactly, key id included.
pub(super) fn judge(unit: &Decision, expected: &Decision) -> Result<(), String> {
    if unit == expected {
        return Ok(());
    }
    let ended_or_unknown = |decision: &Decision| {
        decision.result == AccessResult::Denied
            && matches!(
                decision.reason,
                Some(DenyReason::Expired | DenyReason::UnknownCredential)
            )
    };
    let same_key_if_both_name_one = match (&unit.key_id, &expected.key_id) {
        (Some(unit_key), Some(expected_key)) => unit_key == expected_key,
        _ => true,
    };
    if ended_or_unknown(unit)
        && ended_or_unknown(expected)
        && unit.reason != expected.reason
        && same_key_if_both_name_one
    {
        return Ok(());
    }
    Err(format!(
        "unit decided {}, the API's keys imply {}",
        describe(unit),
        describe(expected)
    ))
}

/// `granted (k1)`, `denied expired (k1)`, `denied unknown_credential`.
pub(super) fn describe(decision: &Decision) -> String {
    let mut text = outcome_label(decision).replace(':', " ");
    if let Some(key) = &decision.key_id {
        text.push_str(&format!(" ({key})"));
    }
    text
}

/// How the report counts a decision: `granted` or `denied:<reason>`.
pub(super) fn outcome_label(decision: &Decision) -> String {
    match (decision.result, decision.reason) {
        (AccessResult::Granted, _) => "granted".to_owned(),
        (AccessResult::Denied, Some(reason)) => format!("denied:{reason}"),
        (AccessResult::Denied, None) => "denied".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::KeyId;

    const NOW: u64 = 1_750_000_000_123;

    #[test]
    fn the_plan_covers_the_contracts_cases_in_whole_seconds() {
        let keys = plan_keys("abc", 5, NOW, Duration::from_secs(4));
        let roles: Vec<Role> = keys.iter().map(|key| key.role).collect();
        assert_eq!(
            roles,
            [
                Role::ShortLived,
                Role::FleetWide,
                Role::Personal,
                Role::Tag,
                Role::Future
            ]
        );
        for key in &keys {
            assert_eq!(key.valid_from_ms % SECOND, 0, "{key:?}");
            assert_eq!(key.valid_to_ms % SECOND, 0, "{key:?}");
            assert!(key.valid_from_ms < key.valid_to_ms, "{key:?}");
            assert!(!key.machines.is_empty(), "{key:?}");
        }
        let short = &keys[0];
        assert!(short.valid_from_ms <= NOW && short.valid_to_ms >= NOW + 4_000);
        assert!(short.valid_to_ms < NOW + 6_000);
        assert_eq!(keys[1].machines, [0, 1, 2, 3, 4]);
        assert_eq!(keys[2].machines, [0, 1, 2]);
        assert!(keys[2].personal);
        assert_eq!(keys[3].machines, [0, 2, 4]);
        assert_eq!(keys[3].credential.as_deref(), Some("SIMTAGABC"));
        assert!(keys[4].valid_from_ms > NOW);
    }

    #[test]
    fn a_single_unit_still_gets_every_key() {
        for key in plan_keys("abc", 1, NOW, Duration::from_secs(2)) {
            assert_eq!(key.machines, [0], "{:?}", key.role);
        }
    }

    #[test]
    fn requests_need_an_operator_for_personal_keys() {
        let keys = plan_keys("abc", 2, NOW, Duration::from_secs(2));
        let assets = [AssetId::new("a0"), AssetId::new("a1")];
        assert!(keys[2].request(&assets, None, "abc").is_none());
        let operator = OperatorId::new("op1");
        let personal = keys[2]
            .request(&assets, Some(&operator), "abc")
            .expect("request");
        assert_eq!(personal.operator_id, Some(operator));
        assert_eq!(personal.asset_ids, [AssetId::new("a0")]);
        let tag = keys[3].request(&assets, None, "abc").expect("request");
        assert_eq!(tag.credential.as_deref(), Some("SIMTAGABC"));
        assert_eq!(tag.description.as_deref(), Some("sim abc tag"));
        assert!(keys[0].request(&assets[..1], None, "abc").is_none());
    }

    fn view_of(request: &NewKey, credential: &str) -> KeyView {
        KeyView {
            id: KeyId::new("k1"),
            personal: request.personal,
            operator_id: request.operator_id.clone(),
            asset_ids: request.asset_ids.clone(),
            access_type: request.access_type,
            valid_from: request.valid_from.clone(),
            valid_to: request.valid_to.clone(),
            credential: credential.to_owned(),
            description: request.description.clone(),
            created_at: String::new(),
        }
    }

    #[test]
    fn created_keys_are_held_to_the_request() {
        let keys = plan_keys("abc", 2, NOW, Duration::from_secs(2));
        let assets = [AssetId::new("a0"), AssetId::new("a1")];
        let fleet = keys[1].request(&assets, None, "abc").expect("request");
        assert!(check_created(&keys[1], &fleet, &view_of(&fleet, "123456")).is_empty());
        let problems = check_created(&keys[1], &fleet, &view_of(&fleet, "12345a"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        let mut moved = view_of(&fleet, "123456");
        moved.valid_to = "2030-01-01T00:00:00Z".into();
        moved.asset_ids.pop();
        let problems = check_created(&keys[1], &fleet, &moved);
        assert_eq!(problems.len(), 2, "{problems:?}");
        let tag = keys[3].request(&assets, None, "abc").expect("request");
        let problems = check_created(&keys[3], &tag, &view_of(&tag, "OTHER"));
        assert!(problems[0].starts_with("tag id"), "{problems:?}");
    }

    #[test]
    fn duplicate_pins_are_found_per_asset() {
        let keys = plan_keys("abc", 2, NOW, Duration::from_secs(2));
        let assets = [AssetId::new("a0"), AssetId::new("a1")];
        let fleet = keys[1].request(&assets, None, "abc").expect("request");
        let mut second = view_of(&fleet, "111111");
        second.id = KeyId::new("k2");
        second.asset_ids = vec![AssetId::new("a1")];
        let views = [view_of(&fleet, "111111"), second.clone()];
        assert_eq!(
            duplicate_pins(&views),
            [(AssetId::new("a1"), "111111".to_owned())]
        );
        second.credential = "222222".into();
        assert!(duplicate_pins(&[view_of(&fleet, "111111"), second]).is_empty());
    }

    #[test]
    fn judging_allows_only_the_ended_key_difference() {
        let k1 = || Some(KeyId::new("k1"));
        let granted = Decision::granted(KeyId::new("k1"));
        let expired = Decision::denied(DenyReason::Expired, k1());
        let unknown = Decision::denied(DenyReason::UnknownCredential, None);
        let future = Decision::denied(DenyReason::NotYetValid, k1());
        assert!(judge(&granted, &granted).is_ok());
        assert!(judge(&unknown, &expired).is_ok(), "dropped off the unit");
        assert!(judge(&expired, &unknown).is_ok(), "drop still on its way");
        assert!(judge(&granted, &expired).is_err());
        assert!(judge(&expired, &granted).is_err());
        assert!(judge(&future, &unknown).is_err());
        assert!(judge(&Decision::granted(KeyId::new("k2")), &granted).is_err());
        let other_expired = Decision::denied(DenyReason::Expired, Some(KeyId::new("k2")));
        let error = judge(&other_expired, &expired).expect_err("other key");
        assert!(error.contains("denied expired (k2)"), "{error}");
    }

    #[test]
    fn labels_and_unknown_credentials() {
        assert_eq!(
            outcome_label(&Decision::granted(KeyId::new("k"))),
            "granted"
        );
        assert_eq!(
            outcome_label(&Decision::denied(DenyReason::NotYetValid, None)),
            "denied:not_yet_valid"
        );
        let unknown = unknown_credential("abc", 7);
        assert!(unknown.chars().any(|c| c.is_ascii_alphabetic()));
        assert!(!unknown.starts_with(&tag_id("abc")));
    }
}
