//! The key set a unit holds and the decision its firmware makes when someone presents a
//! credential, with no I/O, so the rules can be tested exactly and reused to work out what
//! the key API says a unit *should* decide (the scenario feeds the keys `GET /v1/keys`
//! shows through the same `decide`, and any difference is the gateway's).
//!
//! The rules, as real firmware applies them to the set it last received:
//! - a set replaces the held one only if its version is higher: retained messages are
//!   redelivered on every reconnect, and nothing may move a unit back to an older set;
//! - an attempt is granted only if a held key has exactly that credential and
//!   `valid_from <= at < valid_to`; otherwise it is denied `not_yet_valid` or `expired`
//!   when a key has the credential but not the window, and `unknown_credential` when none
//!   has it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::api::{AccessResult, AccessType, DenyReason, KeyId, KeyView};
use crate::telemetry::ms_from_rfc3339;

/// One key as a unit holds it; times in ms since the epoch, window `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldKey {
    pub id: KeyId,
    pub access_type: AccessType,
    pub credential: String,
    pub valid_from_ms: u64,
    pub valid_to_ms: u64,
}

impl HeldKey {
    /// The key as the API shows it, for comparing a unit with the API; `None` when a time
    /// is not RFC 3339.
    pub fn from_view(view: &KeyView) -> Option<HeldKey> {
        Some(HeldKey {
            id: view.id.clone(),
            access_type: view.access_type,
            credential: view.credential.clone(),
            valid_from_ms: view.valid_from_ms()?,
            valid_to_ms: view.valid_to_ms()?,
        })
    }

    /// Whether the key opens the asset at `at_ms`.
    pub fn is_valid_at(&self, at_ms: u64) -> bool {
        self.valid_from_ms <= at_ms && at_ms < self.valid_to_ms
    }
}

/// The full key set of one unit, as published retained on `/tenants/{d}/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySet {
    pub version: u64,
    pub keys: Vec<HeldKey>,
}

/// Why a key-set message could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    #[error("not a key set: {0}")]
    Malformed(String),
    #[error("key {key}: {field} {value:?} is neither ms since the epoch nor RFC 3339")]
    BadTime {
        key: String,
        field: &'static str,
        value: String,
    },
}

/// A time on the wire: the contract's JSON uses RFC 3339 text on HTTP and ms since the
/// epoch for event `ts` on MQTT, and does not say which the key set uses, so a unit accepts
/// both.
#[derive(Deserialize)]
#[serde(untagged)]
enum WireTime {
    Millis(u64),
    Text(String),
}

#[derive(Deserialize)]
struct WireKey {
    id: KeyId,
    access_type: AccessType,
    credential: String,
    valid_from: WireTime,
    valid_to: WireTime,
}

#[derive(Deserialize)]
struct WireSet {
    version: u64,
    keys: Vec<WireKey>,
}

fn time_ms(key: &KeyId, field: &'static str, time: WireTime) -> Result<u64, KeySetError> {
    match time {
        WireTime::Millis(ms) => Ok(ms),
        WireTime::Text(text) => ms_from_rfc3339(&text).ok_or_else(|| KeySetError::BadTime {
            key: key.to_string(),
            field,
            value: text,
        }),
    }
}

impl KeySet {
    /// Reads a key-set message as a unit receives it. Network input: every failure is an
    /// error, nothing panics.
    pub fn parse(payload: &[u8]) -> Result<KeySet, KeySetError> {
        let wire: WireSet = serde_json::from_slice(payload)
            .map_err(|error| KeySetError::Malformed(error.to_string()))?;
        let keys = wire
            .keys
            .into_iter()
            .map(|key| {
                let valid_from_ms = time_ms(&key.id, "valid_from", key.valid_from)?;
                let valid_to_ms = time_ms(&key.id, "valid_to", key.valid_to)?;
                Ok(HeldKey {
                    id: key.id,
                    access_type: key.access_type,
                    credential: key.credential,
                    valid_from_ms,
                    valid_to_ms,
                })
            })
            .collect::<Result<_, KeySetError>>()?;
        Ok(KeySet {
            version: wire.version,
            keys,
        })
    }

    pub fn get(&self, id: &KeyId) -> Option<&HeldKey> {
        self.keys.iter().find(|key| &key.id == id)
    }

    pub fn contains(&self, id: &KeyId) -> bool {
        self.get(id).is_some()
    }

    /// What the firmware decides when `credential` is presented at `at_ms`.
    pub fn decide(&self, credential: &str, at_ms: u64) -> Decision {
        decide(&self.keys, credential, at_ms)
    }
}

/// What a unit decided about one attempt; `key_id` names the key the credential matched,
/// when one did (also for `not_yet_valid` and `expired`, so the owner sees which key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub result: AccessResult,
    pub key_id: Option<KeyId>,
    pub reason: Option<DenyReason>,
}

impl Decision {
    pub fn granted(key_id: KeyId) -> Self {
        Self {
            result: AccessResult::Granted,
            key_id: Some(key_id),
            reason: None,
        }
    }

    pub fn denied(reason: DenyReason, key_id: Option<KeyId>) -> Self {
        Self {
            result: AccessResult::Denied,
            key_id,
            reason: Some(reason),
        }
    }

    pub fn is_granted(&self) -> bool {
        self.result == AccessResult::Granted
    }
}

/// The firmware rule over any list of keys. Several keys may carry the same credential
/// (a DualID tag on a new key after its old one ended); the choice is deterministic so the
/// same keys always give the same decision: a key valid now (lowest id), else one that
/// starts later (earliest start, then lowest id), else one that ended (latest end, then
/// lowest id).
pub fn decide(keys: &[HeldKey], credential: &str, at_ms: u64) -> Decision {
    let matching = || keys.iter().filter(|key| key.credential == credential);
    if let Some(valid) = matching()
        .filter(|key| key.is_valid_at(at_ms))
        .min_by(|a, b| a.id.cmp(&b.id))
    {
        return Decision::granted(valid.id.clone());
    }
    if let Some(future) = matching()
        .filter(|key| at_ms < key.valid_from_ms)
        .min_by(|a, b| (a.valid_from_ms, &a.id).cmp(&(b.valid_from_ms, &b.id)))
    {
        return Decision::denied(DenyReason::NotYetValid, Some(future.id.clone()));
    }
    if let Some(ended) = matching().min_by(|a, b| {
        (std::cmp::Reverse(a.valid_to_ms), &a.id).cmp(&(std::cmp::Reverse(b.valid_to_ms), &b.id))
    }) {
        return Decision::denied(DenyReason::Expired, Some(ended.id.clone()));
    }
    Decision::denied(DenyReason::UnknownCredential, None)
}

/// What offering a received set to the held one did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// The received set is newer and is now held; `previous` was the held version.
    Taken { previous: Option<u64> },
    /// The same version again (a retained redelivery); the held set stays.
    Same,
    /// An older version; the held set (version `held`) stays.
    Stale { held: u64 },
}

/// Replaces `held` with `incoming` only if its version is higher.
pub fn offer(held: &mut Option<Arc<KeySet>>, incoming: KeySet) -> Offer {
    match held.as_ref().map(|set| set.version) {
        Some(version) if incoming.version == version => Offer::Same,
        Some(version) if incoming.version < version => Offer::Stale { held: version },
        previous => {
            *held = Some(Arc::new(incoming));
            Offer::Taken { previous }
        }
    }
}

/// The payload of `/tenants/{d}/events/access`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessReport {
    /// The unit's clock, ms since the epoch.
    pub ts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<KeyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_hint: Option<String>,
    pub result: AccessResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DenyReason>,
}

impl AccessReport {
    pub fn new(decision: &Decision, credential: &str, ts: u64) -> Self {
        Self {
            ts,
            key_id: decision.key_id.clone(),
            credential_hint: Some(credential_hint(credential)),
            result: decision.result,
            reason: decision.reason,
        }
    }
}

/// What a unit reports of a presented credential: the end of it, the rest masked. A PIN or
/// a digital-key secret must never reach an event log in full, but an owner looking at
/// denied attempts wants to recognise which tag or code was tried. At most 4 characters and
/// at most half of the credential stay visible.
pub fn credential_hint(credential: &str) -> String {
    let length = credential.chars().count();
    let shown = (length / 2).min(4);
    let masked = "*".repeat(length - shown);
    let tail: String = credential.chars().skip(length - shown).collect();
    format!("{masked}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;
    const NOW: u64 = 1_750_000_000_000;

    fn key(id: &str, credential: &str, from: u64, to: u64) -> HeldKey {
        HeldKey {
            id: KeyId::new(id),
            access_type: AccessType::KeypadPin,
            credential: credential.to_owned(),
            valid_from_ms: from,
            valid_to_ms: to,
        }
    }

    fn set(version: u64, keys: Vec<HeldKey>) -> KeySet {
        KeySet { version, keys }
    }

    #[test]
    fn window_is_inclusive_at_the_start_and_exclusive_at_the_end() {
        let keys = [key("k1", "111111", NOW, NOW + HOUR)];
        assert_eq!(
            decide(&keys, "111111", NOW),
            Decision::granted(KeyId::new("k1"))
        );
        assert!(decide(&keys, "111111", NOW + HOUR - 1).is_granted());
        assert_eq!(
            decide(&keys, "111111", NOW - 1),
            Decision::denied(DenyReason::NotYetValid, Some(KeyId::new("k1")))
        );
        assert_eq!(
            decide(&keys, "111111", NOW + HOUR),
            Decision::denied(DenyReason::Expired, Some(KeyId::new("k1")))
        );
    }

    #[test]
    fn unknown_credentials_name_no_key() {
        let keys = [key("k1", "111111", NOW, NOW + HOUR)];
        assert_eq!(
            decide(&keys, "222222", NOW),
            Decision::denied(DenyReason::UnknownCredential, None)
        );
        assert_eq!(
            decide(&[], "111111", NOW),
            Decision::denied(DenyReason::UnknownCredential, None)
        );
        // A prefix or a different case is a different credential.
        let tags = [key("k2", "AB12", NOW, NOW + HOUR)];
        assert!(!decide(&tags, "AB1", NOW).is_granted());
        assert!(!decide(&tags, "ab12", NOW).is_granted());
    }

    #[test]
    fn a_valid_key_wins_over_ended_and_future_keys_with_the_same_credential() {
        let keys = [
            key("k3", "TAG", NOW - 2 * HOUR, NOW - HOUR),
            key("k2", "TAG", NOW + HOUR, NOW + 2 * HOUR),
            key("k1", "TAG", NOW - HOUR, NOW + HOUR),
        ];
        assert_eq!(
            decide(&keys, "TAG", NOW),
            Decision::granted(KeyId::new("k1"))
        );
        // Without the valid one, the future one explains the denial better than the old.
        assert_eq!(
            decide(&keys[..2], "TAG", NOW),
            Decision::denied(DenyReason::NotYetValid, Some(KeyId::new("k2")))
        );
        // Of two ended keys, the one that ended last is named.
        let ended = [
            key("k5", "TAG", NOW - 3 * HOUR, NOW - 2 * HOUR),
            key("k4", "TAG", NOW - 2 * HOUR, NOW - HOUR),
        ];
        assert_eq!(
            decide(&ended, "TAG", NOW),
            Decision::denied(DenyReason::Expired, Some(KeyId::new("k4")))
        );
        // The order of the set does not matter.
        let mut reversed = keys.to_vec();
        reversed.reverse();
        assert_eq!(decide(&reversed, "TAG", NOW), decide(&keys, "TAG", NOW));
    }

    #[test]
    fn an_empty_window_never_opens() {
        let keys = [key("k1", "1", NOW, NOW)];
        assert_eq!(
            decide(&keys, "1", NOW).reason,
            Some(DenyReason::Expired),
            "at == valid_to is outside"
        );
    }

    #[test]
    fn only_a_higher_version_replaces_the_held_set() {
        let mut held = None;
        assert_eq!(
            offer(&mut held, set(3, vec![key("k1", "1", 0, 10)])),
            Offer::Taken { previous: None }
        );
        assert_eq!(
            offer(&mut held, set(3, Vec::new())),
            Offer::Same,
            "a redelivered version is not taken again"
        );
        assert_eq!(
            offer(&mut held, set(2, Vec::new())),
            Offer::Stale { held: 3 }
        );
        assert_eq!(held.as_ref().map(|set| set.keys.len()), Some(1));
        assert_eq!(
            offer(&mut held, set(7, Vec::new())),
            Offer::Taken { previous: Some(3) }
        );
        let held = held.expect("held");
        assert_eq!((held.version, held.keys.len()), (7, 0));
    }

    #[test]
    fn version_zero_is_taken_by_a_unit_without_a_set() {
        let mut held = None;
        assert_eq!(
            offer(&mut held, set(0, Vec::new())),
            Offer::Taken { previous: None }
        );
    }

    #[test]
    fn key_sets_parse_with_either_time_form() {
        let payload = br#"{"version":4,"keys":[
            {"id":"k1","access_type":"keypad_pin","credential":"123456",
             "valid_from":"2025-01-01T00:00:00Z","valid_to":1735776000000},
            {"id":9,"access_type":"dualid_tag","credential":"TAG9",
             "valid_from":1735689600000,"valid_to":"2025-01-02T00:00:00.500+00:00"}]}"#;
        let set = KeySet::parse(payload).expect("set");
        assert_eq!(set.version, 4);
        assert_eq!(set.keys[0].valid_from_ms, 1_735_689_600_000);
        assert_eq!(set.keys[0].valid_to_ms, 1_735_776_000_000);
        assert_eq!(set.keys[1].id.to_string(), "9");
        assert_eq!(set.keys[1].valid_to_ms, 1_735_776_000_500);
        assert!(set.contains(&KeyId::new("k1")));
        assert!(set.decide("TAG9", 1_735_700_000_000).is_granted());
    }

    #[test]
    fn malformed_sets_are_errors_not_panics() {
        for payload in [
            &b""[..],
            b"offline",
            b"{}",
            b"{\"version\":-1,\"keys\":[]}",
            b"{\"version\":1,\"keys\":[{\"id\":\"k\"}]}",
            b"{\"version\":1,\"keys\":[{\"id\":\"k\",\"access_type\":\"laser\",\
              \"credential\":\"1\",\"valid_from\":0,\"valid_to\":1}]}",
        ] {
            assert!(
                matches!(KeySet::parse(payload), Err(KeySetError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
        let bad_time = br#"{"version":1,"keys":[{"id":"k","access_type":"keypad_pin",
            "credential":"1","valid_from":"soon","valid_to":1}]}"#;
        assert!(matches!(
            KeySet::parse(bad_time),
            Err(KeySetError::BadTime {
                field: "valid_from",
                ..
            })
        ));
    }

    #[test]
    fn hints_never_show_more_than_half_or_four_characters() {
        assert_eq!(credential_hint("123456"), "***456");
        assert_eq!(credential_hint("0123456789ABCDEF"), "************CDEF");
        assert_eq!(credential_hint("7"), "*");
        assert_eq!(credential_hint(""), "");
        assert_eq!(credential_hint("äöü"), "**ü");
    }

    #[test]
    fn reports_carry_the_decision_and_the_hint() {
        let report = AccessReport::new(
            &Decision::denied(DenyReason::Expired, Some(KeyId::new("k1"))),
            "123456",
            NOW,
        );
        assert_eq!(
            serde_json::to_value(&report).expect("encode"),
            serde_json::json!({"ts": NOW, "key_id": "k1", "credential_hint": "***456",
                "result": "denied", "reason": "expired"})
        );
        let granted = AccessReport::new(&Decision::granted(KeyId::new("k2")), "TAG", NOW);
        let encoded = serde_json::to_value(&granted).expect("encode");
        assert_eq!(encoded.get("reason"), None);
        assert_eq!(encoded["result"], "granted");
    }

    #[test]
    fn api_keys_convert_to_held_keys() {
        let view: KeyView = serde_json::from_str(
            r#"{"id":"k1","personal":true,"operator_id":"op","asset_ids":["a"],
                "access_type":"digital_key","valid_from":"2025-01-01T00:00:00Z",
                "valid_to":"2025-01-01T01:00:00Z","credential":"s3cr3t","created_at":""}"#,
        )
        .expect("view");
        let held = HeldKey::from_view(&view).expect("held");
        assert_eq!(held.valid_to_ms - held.valid_from_ms, HOUR);
        let broken = KeyView {
            valid_to: "later".into(),
            ..view
        };
        assert_eq!(HeldKey::from_view(&broken), None);
    }
}
