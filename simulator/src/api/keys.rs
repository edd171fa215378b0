//! The keys side of the control API: keys that let operators use assets with one access
//! type inside a date window, their distribution to the units, and the access attempts the
//! units report back (DESIGN.md section 5.1, rule 6).
//!
//! Kept in its own file like `sharing.rs` and `support.rs`; the shapes are the simulator's
//! own copy of the contract, so a gateway that drifts from them fails to decode here instead
//! of being silently followed. The enums have no catch-all variant on purpose: an access
//! type or result the contract does not name is exactly the drift a key check must notice.
//! The one open field is an access event's `reason`, which is whatever a unit reported.

use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::operators::OperatorId;
use super::sharing::dry_run_query;
use super::types::{opaque_id, AssetId, DeviceId, HistoryQuery, OpaqueId, Page};
use super::{ApiClient, ApiError};
use crate::telemetry::ms_from_rfc3339;

opaque_id!(
    /// A key's id as the gateway assigned it; the units' key sets and access events name
    /// keys by it too.
    KeyId
);

/// How an operator proves the right to use an asset; each needs hardware on the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessType {
    /// A secret the gateway generates, presented over Bluetooth (unit with relay).
    DigitalKey,
    /// A 6-digit PIN the gateway generates, typed on a keypad.
    KeypadPin,
    /// A DualID tag whose id the caller gives as `credential`.
    DualidTag,
}

impl AccessType {
    pub const ALL: [AccessType; 3] = [
        AccessType::DigitalKey,
        AccessType::KeypadPin,
        AccessType::DualidTag,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccessType::DigitalKey => "digital_key",
            AccessType::KeypadPin => "keypad_pin",
            AccessType::DualidTag => "dualid_tag",
        }
    }
}

impl fmt::Display for AccessType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Body of `POST /v1/keys`. Times are RFC 3339; the window is `[valid_from, valid_to)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewKey {
    /// `true`: the key belongs to `operator_id`; `false`: whoever holds it may use it.
    pub personal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<OperatorId>,
    pub asset_ids: Vec<AssetId>,
    pub access_type: AccessType,
    pub valid_from: String,
    pub valid_to: String,
    /// Only for `dualid_tag` (the tag's id); the gateway generates the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl NewKey {
    /// A non-personal key: anyone holding the credential may use the assets.
    pub fn shared(
        asset_ids: Vec<AssetId>,
        access_type: AccessType,
        valid_from: impl Into<String>,
        valid_to: impl Into<String>,
    ) -> Self {
        Self {
            personal: false,
            operator_id: None,
            asset_ids,
            access_type,
            valid_from: valid_from.into(),
            valid_to: valid_to.into(),
            credential: None,
            description: None,
        }
    }

    /// A personal key of one operator.
    pub fn personal(
        operator_id: OperatorId,
        asset_ids: Vec<AssetId>,
        access_type: AccessType,
        valid_from: impl Into<String>,
        valid_to: impl Into<String>,
    ) -> Self {
        Self {
            personal: true,
            operator_id: Some(operator_id),
            ..Self::shared(asset_ids, access_type, valid_from, valid_to)
        }
    }

    pub fn with_credential(mut self, credential: impl Into<String>) -> Self {
        self.credential = Some(credential.into());
        self
    }

    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// A key as every key endpoint shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyView {
    pub id: KeyId,
    pub personal: bool,
    #[serde(default)]
    pub operator_id: Option<OperatorId>,
    pub asset_ids: Vec<AssetId>,
    pub access_type: AccessType,
    /// RFC 3339, inclusive.
    pub valid_from: String,
    /// RFC 3339, exclusive.
    pub valid_to: String,
    /// The PIN, secret or tag id the units compare against.
    pub credential: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub created_at: String,
}

impl KeyView {
    /// `valid_from` in ms since the epoch; `None` when it is not RFC 3339.
    pub fn valid_from_ms(&self) -> Option<u64> {
        ms_from_rfc3339(&self.valid_from)
    }

    /// `valid_to` in ms since the epoch; `None` when it is not RFC 3339.
    pub fn valid_to_ms(&self) -> Option<u64> {
        ms_from_rfc3339(&self.valid_to)
    }
}

/// Which units hold a change: `delivered` acknowledged the new key set within the gateway's
/// bounded wait, `pending` did not (offline, or slow) and get it when they reconnect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distribution {
    pub delivered: Vec<DeviceId>,
    pub pending: Vec<DeviceId>,
}

impl Distribution {
    /// Every unit the change was sent to, delivered or not.
    pub fn all(&self) -> impl Iterator<Item = &DeviceId> {
        self.delivered.iter().chain(&self.pending)
    }
}

/// Answer of `POST /v1/keys` and `PATCH /v1/keys/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyChange {
    pub key: KeyView,
    pub distribution: Distribution,
}

/// Answer of `DELETE /v1/keys/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRemoval {
    pub distribution: Distribution,
}

/// Answer of the bulk key calls: the keys as they are (or, in a dry run, would be) after
/// the call; a bulk delete lists the keys it removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyBatch {
    /// Echoes `?dry_run=true`: nothing was changed.
    pub dry_run: bool,
    pub items: Vec<KeyView>,
    pub distribution: Distribution,
}

/// What may change after a key was created (rule 6); `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEdit {
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Filters of `GET /v1/keys`; `None` fields are left out of the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<AssetId>,
}

/// What a unit decided about an access attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessResult {
    Granted,
    Denied,
}

impl AccessResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessResult::Granted => "granted",
            AccessResult::Denied => "denied",
        }
    }
}

impl fmt::Display for AccessResult {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Why a unit denied an attempt, as the simulated firmware reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// No key in the unit's set has this credential.
    UnknownCredential,
    /// A key has it, but its window starts later.
    NotYetValid,
    /// A key has it, but its window has ended.
    Expired,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::UnknownCredential => "unknown_credential",
            DenyReason::NotYetValid => "not_yet_valid",
            DenyReason::Expired => "expired",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One access attempt as `GET /v1/assets/{x}/access-events` and the owner's live stream
/// (`event: access`) show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessEvent {
    /// The asset as its owner knows it.
    pub asset_id: AssetId,
    /// RFC 3339 form of `ts_ms`.
    pub ts: String,
    /// The unit's clock, ms since the epoch.
    pub ts_ms: u64,
    #[serde(default)]
    pub key_id: Option<KeyId>,
    #[serde(default)]
    pub credential_hint: Option<String>,
    pub result: AccessResult,
    /// Text, not `DenyReason`: it is whatever the unit reported.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Body of `POST /v1/keys/bulk-edit`: the ids and the edit side by side.
#[derive(Serialize)]
struct BulkEdit<'a> {
    ids: &'a [KeyId],
    #[serde(flatten)]
    edit: &'a KeyEdit,
}

/// Body of `POST /v1/keys/bulk-delete`.
#[derive(Serialize)]
struct BulkIds<'a> {
    ids: &'a [KeyId],
}

impl ApiClient {
    /// `POST /v1/keys`. Answers once the units acknowledged the new set or the gateway's
    /// bounded wait ended; `distribution` says which.
    pub async fn create_key(&self, key: &NewKey) -> Result<KeyChange, ApiError> {
        self.send(Method::POST, &["keys"], Some(key), "key change")
            .await
    }

    /// `GET /v1/keys`, every page.
    pub async fn list_keys(&self, query: &KeyQuery) -> Result<Vec<KeyView>, ApiError> {
        self.all_pages(&["keys"], query, "key page").await
    }

    /// `PATCH /v1/keys/{id}`: only `valid_to` and `description` change.
    pub async fn edit_key(&self, id: &KeyId, edit: &KeyEdit) -> Result<KeyChange, ApiError> {
        let id = id.to_string();
        self.send(Method::PATCH, &["keys", &id], Some(edit), "key change")
            .await
    }

    /// `DELETE /v1/keys/{id}`.
    pub async fn delete_key(&self, id: &KeyId) -> Result<KeyRemoval, ApiError> {
        let id = id.to_string();
        self.fetch(Method::DELETE, &["keys", &id], "key removal")
            .await
    }

    /// `POST /v1/keys/bulk-edit[?dry_run=true]`: all or nothing.
    pub async fn bulk_edit_keys(
        &self,
        ids: &[KeyId],
        edit: &KeyEdit,
        dry_run: bool,
    ) -> Result<KeyBatch, ApiError> {
        let request = dry_run_query(self.request(Method::POST, &["keys", "bulk-edit"]), dry_run)
            .json(&BulkEdit { ids, edit });
        self.execute(request, "key batch").await
    }

    /// `POST /v1/keys/bulk-delete[?dry_run=true]`: all or nothing.
    pub async fn bulk_delete_keys(
        &self,
        ids: &[KeyId],
        dry_run: bool,
    ) -> Result<KeyBatch, ApiError> {
        let request = dry_run_query(
            self.request(Method::POST, &["keys", "bulk-delete"]),
            dry_run,
        )
        .json(&BulkIds { ids });
        self.execute(request, "key batch").await
    }

    /// `GET /v1/assets/{x}/access-events`, one page (owner only).
    pub async fn access_events_page(
        &self,
        asset_id: &AssetId,
        query: &HistoryQuery,
    ) -> Result<Page<AccessEvent>, ApiError> {
        let request = self
            .request(Method::GET, &["assets", asset_id.as_str(), "access-events"])
            .query(query);
        self.execute(request, "access event page").await
    }

    /// Every access event of an asset in `[from, to]`, following `next_cursor` (bounded like
    /// every listing; `query.cursor` is ignored).
    pub async fn access_events_all(
        &self,
        asset_id: &AssetId,
        query: &HistoryQuery,
    ) -> Result<Vec<AccessEvent>, ApiError> {
        let query = HistoryQuery {
            cursor: None,
            ..query.clone()
        };
        self.all_pages(
            &["assets", asset_id.as_str(), "access-events"],
            &query,
            "access event page",
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = r#"{"id":"k1","personal":false,"operator_id":null,
        "asset_ids":["a0","a1"],"access_type":"keypad_pin",
        "valid_from":"2025-01-01T00:00:00Z","valid_to":"2025-01-02T00:00:00Z",
        "credential":"123456","description":null,"created_at":"2025-01-01T00:00:00Z"}"#;

    #[test]
    fn key_change_parses_and_reads_its_window() {
        let body =
            format!(r#"{{"key":{KEY},"distribution":{{"delivered":["d0"],"pending":["d1"]}}}}"#);
        let change: KeyChange = serde_json::from_str(&body).expect("key change");
        assert_eq!(change.key.access_type, AccessType::KeypadPin);
        assert_eq!(change.key.valid_from_ms(), Some(1_735_689_600_000));
        assert_eq!(change.key.valid_to_ms(), Some(1_735_776_000_000));
        let all: Vec<&str> = change.distribution.all().map(DeviceId::as_str).collect();
        assert_eq!(all, ["d0", "d1"]);
    }

    #[test]
    fn unknown_access_type_is_drift_not_data() {
        let outcome = serde_json::from_str::<AccessType>("\"retina_scan\"");
        assert!(outcome.is_err());
        for access_type in AccessType::ALL {
            let text = serde_json::to_string(&access_type).expect("encode");
            assert_eq!(text, format!("\"{access_type}\""));
        }
    }

    #[test]
    fn new_keys_leave_out_what_the_gateway_generates() {
        let shared = NewKey::shared(
            vec![AssetId::new("a0")],
            AccessType::KeypadPin,
            "2025-01-01T00:00:00Z",
            "2025-01-02T00:00:00Z",
        );
        assert_eq!(
            serde_json::to_value(&shared).expect("encode"),
            serde_json::json!({"personal": false, "asset_ids": ["a0"],
                "access_type": "keypad_pin", "valid_from": "2025-01-01T00:00:00Z",
                "valid_to": "2025-01-02T00:00:00Z"})
        );
        let personal = NewKey::personal(
            OperatorId::new("op1"),
            vec![AssetId::new("a0")],
            AccessType::DualidTag,
            "f",
            "t",
        )
        .with_credential("TAG1")
        .with_description("night shift");
        let encoded = serde_json::to_value(&personal).expect("encode");
        assert_eq!(encoded["operator_id"], "op1");
        assert_eq!(encoded["credential"], "TAG1");
        assert_eq!(encoded["description"], "night shift");
    }

    #[test]
    fn access_event_parses_with_optional_fields_absent() {
        let event: AccessEvent = serde_json::from_str(
            r#"{"asset_id":"a0","ts":"2025-01-01T00:00:00Z","ts_ms":1735689600000,
                "result":"denied","reason":"unknown_credential"}"#,
        )
        .expect("event");
        assert_eq!(event.key_id, None);
        assert_eq!(event.result, AccessResult::Denied);
        assert_eq!(
            event.reason.as_deref(),
            Some(DenyReason::UnknownCredential.as_str())
        );
    }

    #[test]
    fn bulk_bodies_carry_ids_and_only_the_given_edits() {
        let client = ApiClient::new("http://127.0.0.1:9/", "t").expect("client");
        let edit = KeyEdit {
            valid_to: Some("2025-01-03T00:00:00Z".into()),
            description: None,
        };
        let ids = [KeyId::new("k1")];
        let request = dry_run_query(client.request(Method::POST, &["keys", "bulk-edit"]), true)
            .json(&BulkEdit {
                ids: &ids,
                edit: &edit,
            })
            .build()
            .expect("request");
        assert_eq!(
            request.url().as_str(),
            "http://127.0.0.1:9/v1/keys/bulk-edit?dry_run=true"
        );
        let body = request
            .body()
            .and_then(reqwest::Body::as_bytes)
            .expect("body");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(body).expect("json"),
            serde_json::json!({"ids": ["k1"], "valid_to": "2025-01-03T00:00:00Z"})
        );
    }
}
