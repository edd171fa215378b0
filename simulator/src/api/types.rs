//! The JSON shapes of the public HTTP API, as a third-party client sees them.
//!
//! These are written from the contract in DESIGN.md section 5, not shared with the gateway:
//! the simulator must notice when the gateway drifts from the documented shapes, so it keeps
//! its own copy. Fields the contract calls optional are `Option`s with `#[serde(default)]`,
//! so a missing field and a `null` mean the same thing.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A server-assigned id whose JSON type the contract leaves open.
///
/// The gateway may encode account and principal ids as strings or as numbers; keeping the
/// original form lets the simulator send an id back (for example as `parent_id`) exactly as
/// it received it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum OpaqueId {
    Text(String),
    Number(u64),
}

impl fmt::Display for OpaqueId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpaqueId::Text(text) => formatter.write_str(text),
            OpaqueId::Number(number) => write!(formatter, "{number}"),
        }
    }
}

impl Serialize for OpaqueId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            OpaqueId::Text(text) => serializer.serialize_str(text),
            OpaqueId::Number(number) => serializer.serialize_u64(*number),
        }
    }
}

impl<'de> Deserialize<'de> for OpaqueId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Text(String),
            Number(u64),
        }
        Ok(match Wire::deserialize(deserializer)? {
            Wire::Text(text) => OpaqueId::Text(text),
            Wire::Number(number) => OpaqueId::Number(number),
        })
    }
}

macro_rules! opaque_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(OpaqueId);

        impl $name {
            /// Wraps an id given as text, for ids that come from outside a response
            /// (command-line flags, test fixtures).
            pub fn new(id: impl Into<String>) -> Self {
                Self(OpaqueId::Text(id.into()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(formatter)
            }
        }
    };
}
/// Shared with `sharing.rs`, whose grant and partnership ids are just as open.
pub(super) use opaque_id;

opaque_id!(
    /// An account id as the gateway assigned it; it also appears in MQTT topics.
    AccountId
);
opaque_id!(
    /// A user's or staff member's id as the gateway assigned it.
    PrincipalId
);

macro_rules! client_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id without checking it: tests send invalid ids on purpose to see
            /// the gateway refuse them.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self::new(id)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self::new(id)
            }
        }
    };
}

client_id!(
    /// A telematics unit's id, chosen by the caller; ASCII alphanumeric, 1..=64 characters,
    /// because it becomes an MQTT tenant id.
    DeviceId
);
client_id!(
    /// An asset id as one account knows it; ASCII alphanumeric plus `-` and `_`.
    AssetId
);

/// Answer of `GET /v1/me`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub principal_id: PrincipalId,
    pub name: String,
    pub kind: PrincipalKind,
    /// Kept as text because staff roles (`platform_admin`, `support`, ...) and user roles
    /// share this field.
    pub role: String,
    #[serde(default)]
    pub account_id: Option<AccountId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    Staff,
}

/// Answer of `POST /v1/accounts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    #[serde(default)]
    pub parent_id: Option<AccountId>,
    #[serde(default)]
    pub created_at: String,
}

/// The roles a user of an account can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    Admin,
    FleetAdmin,
    Viewer,
}

/// Answer of `POST /v1/accounts/{a}/users`; the token is shown only here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedUser {
    pub id: PrincipalId,
    pub name: String,
    pub role: UserRole,
    pub account_id: AccountId,
    pub token: String,
}

/// What a unit can do besides telemetry; decides which key types reach it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    #[serde(default)]
    pub bluetooth_relay: bool,
    #[serde(default)]
    pub keypad: bool,
    #[serde(default)]
    pub dualid: bool,
}

/// Body of `POST /v1/devices`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDevice {
    pub id: DeviceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csr_pem: Option<String>,
}

impl NewDevice {
    pub fn new(id: impl Into<DeviceId>) -> Self {
        Self {
            id: id.into(),
            capabilities: None,
            csr_pem: None,
        }
    }
}

/// Answer of `POST /v1/devices`. The PEM fields carry the unit's TLS identity; `key_pem` is
/// absent when the caller sent its own CSR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub account_id: AccountId,
    #[serde(default)]
    pub capabilities: Capabilities,
    #[serde(default)]
    pub ca_pem: Option<String>,
    #[serde(default)]
    pub cert_pem: Option<String>,
    #[serde(default)]
    pub key_pem: Option<String>,
}

/// Body of `POST /v1/assets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAsset {
    pub id: AssetId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<DeviceId>,
}

impl NewAsset {
    pub fn new(id: impl Into<AssetId>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            serial: None,
            device_id: None,
        }
    }

    pub fn bound_to(mut self, device_id: impl Into<DeviceId>) -> Self {
        self.device_id = Some(device_id.into());
        self
    }
}

/// How the caller's account relates to an asset it can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetRelation {
    Owned,
    Shared,
    Mirror,
    /// A relation this simulator does not know yet; kept so a newer gateway still parses.
    #[serde(other)]
    Unknown,
}

/// An asset as `POST /v1/assets` and `GET /v1/assets` return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub id: AssetId,
    pub account_id: AccountId,
    pub name: String,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    pub relation: AssetRelation,
    #[serde(default)]
    pub created_at: String,
}

/// One page of a list answer; `next_cursor` goes back as `?cursor=` for the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// Query of `GET /v1/assets/{x}/telemetry`; `None` fields are left out of the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HistoryQuery {
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The gateway defaults to 100 and caps at 1000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A telemetry point as the gateway hands it out (history, latest, SSE, MQTT account topic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub asset_id: AssetId,
    /// RFC 3339 form of `ts_ms`.
    pub ts: String,
    pub ts_ms: u64,
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

impl Point {
    pub fn sensor(&self, name: &str) -> Option<f64> {
        self.sensors.get(name).copied()
    }

    /// The simulator's per-unit sequence number (`sensors.seq`), if this point carries one
    /// that is a whole, non-negative number.
    pub fn seq(&self) -> Option<u64> {
        self.sensor(crate::telemetry::SEQ_SENSOR)
            .and_then(crate::telemetry::whole_number)
    }
}

/// Answer of `GET /v1/devices/{d}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub device_id: DeviceId,
    pub online: bool,
    #[serde(default)]
    pub last_seen: Option<String>,
    pub points: u64,
    #[serde(default)]
    pub last_error: Option<String>,
    pub error_count: u64,
    #[serde(default)]
    pub key_version_pushed: Option<u64>,
    #[serde(default)]
    pub key_version_acked: Option<u64>,
}

/// An RFC 9457 problem document, the body of every error answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type", default)]
    pub problem_type: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_ids_keep_their_json_type() {
        let from_number: AccountId = serde_json::from_str("42").expect("number id");
        assert_eq!(from_number.to_string(), "42");
        assert_eq!(serde_json::to_string(&from_number).expect("encode"), "42");
        let from_text: AccountId = serde_json::from_str("\"acc1\"").expect("text id");
        assert_eq!(
            serde_json::to_string(&from_text).expect("encode"),
            "\"acc1\""
        );
    }

    #[test]
    fn point_parses_with_optional_fields_missing() {
        let point: Point = serde_json::from_str(
            r#"{"asset_id":"a-1","ts":"2025-01-01T00:00:00Z","ts_ms":1735689600000,
                "lat":1.5,"sensors":{"seq":7,"sent_us":1735689600000123}}"#,
        )
        .expect("point");
        assert_eq!(point.seq(), Some(7));
        assert_eq!(point.lon, None);
        assert_eq!(point.sensor("sent_us"), Some(1_735_689_600_000_123.0));
    }

    #[test]
    fn unknown_asset_relation_still_parses() {
        let relation: AssetRelation = serde_json::from_str("\"borrowed\"").expect("relation");
        assert_eq!(relation, AssetRelation::Unknown);
    }

    #[test]
    fn history_query_leaves_out_missing_fields() {
        let query = HistoryQuery {
            limit: Some(10),
            ..HistoryQuery::default()
        };
        let encoded = serde_json::to_value(&query).expect("encode");
        assert_eq!(encoded, serde_json::json!({"limit": 10}));
    }
}
