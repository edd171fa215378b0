//! The records the store keeps. Plain data: the rules that relate them live in
//! [`crate::policy`] and [`crate::ops`].

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, AssetId, DeviceId, GrantId, PartnershipId, PrincipalId};
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    /// `None` for an organization root.
    pub parent_id: Option<AccountId>,
    pub created_at: Timestamp,
}

/// A user's role. It holds in the user's account and in every descendant account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    Admin,
    FleetAdmin,
    Viewer,
}

impl Role {
    pub const NAMES: &'static str = "admin, fleet_admin, viewer";

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::FleetAdmin => "fleet_admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        match raw {
            "admin" => Some(Role::Admin),
            "fleet_admin" => Some(Role::FleetAdmin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// Admins and fleet admins manage assets and devices; viewers only look.
    pub fn manages_fleet(self) -> bool {
        matches!(self, Role::Admin | Role::FleetAdmin)
    }
}

/// Platform staff. They have no rights in an account beyond what support access gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StaffRole {
    PlatformAdmin,
    Support,
    TechSupport,
}

impl StaffRole {
    pub const NAMES: &'static str = "platform_admin, support, tech_support";

    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::PlatformAdmin => "platform_admin",
            StaffRole::Support => "support",
            StaffRole::TechSupport => "tech_support",
        }
    }

    pub fn parse(raw: &str) -> Option<StaffRole> {
        match raw {
            "platform_admin" => Some(StaffRole::PlatformAdmin),
            "support" => Some(StaffRole::Support),
            "tech_support" => Some(StaffRole::TechSupport),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrincipalKind {
    User { account_id: AccountId, role: Role },
    Staff { role: StaffRole },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub id: PrincipalId,
    pub name: String,
    pub kind: PrincipalKind,
    pub created_at: Timestamp,
    /// Support access active for this staff member when the request began (rule 4). Not
    /// stored: the bearer-token lookup fills it, so a revoke or expiry applies from the
    /// very next request.
    #[serde(skip)]
    pub support: Vec<ActiveSupport>,
}

/// Admin rights a staff member holds in an account through support access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSupport {
    pub account_id: AccountId,
    /// The request id, or the ticket id of a support case: written into every audit entry.
    pub via: String,
}

impl Principal {
    pub fn role_name(&self) -> &'static str {
        match self.kind {
            PrincipalKind::User { role, .. } => role.as_str(),
            PrincipalKind::Staff { role } => role.as_str(),
        }
    }

    pub fn home_account(&self) -> Option<&AccountId> {
        match &self.kind {
            PrincipalKind::User { account_id, .. } => Some(account_id),
            PrincipalKind::Staff { .. } => None,
        }
    }

    pub fn is_staff(&self, wanted: StaffRole) -> bool {
        matches!(self.kind, PrincipalKind::Staff { role } if role == wanted)
    }
}

/// What a unit's hardware can do; decides which key access types it can enforce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub bluetooth_relay: bool,
    pub keypad: bool,
    pub dualid: bool,
}

impl Capabilities {
    /// The fitted hardware in words, for the audit log: `keypad, dualid`, or `none fitted`.
    pub fn describe(&self) -> String {
        let fitted: Vec<&str> = [
            (self.bluetooth_relay, "bluetooth_relay"),
            (self.keypad, "keypad"),
            (self.dualid, "dualid"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        match fitted.is_empty() {
            true => "none fitted".to_owned(),
            false => fitted.join(", "),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub account_id: AccountId,
    pub capabilities: Capabilities,
    /// The asset this unit reports for, with the asset's internal key.
    pub bound_asset: Option<BoundAsset>,
    pub created_at: Timestamp,
    /// Set by deregistration, which also revokes the unit's certificates. The record stays
    /// as a tombstone: a certificate names the id until it expires, so the id must never
    /// be reused.
    pub deregistered_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundAsset {
    pub asset_id: AssetId,
    pub asset_key: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    /// Internal key: telemetry is stored under it, so an asset's history survives renames.
    pub key: u64,
    pub account_id: AccountId,
    pub id: AssetId,
    pub name: String,
    pub serial: Option<String>,
    pub device_id: Option<DeviceId>,
    pub created_at: Timestamp,
    pub details: crate::details::AssetDetails,
    /// Set when this asset is a mirror of another tenant's asset (rule 5): read-only here.
    pub mirror: Option<crate::tenant::Mirror>,
    /// Where this (source) asset is shared to by tenant sharing.
    pub sharing: crate::tenant::SourceSharing,
}

/// What the gateway knows of a unit's health. Written with telemetry batches, so it is at
/// most one commit window behind the `DeviceActor`'s in-memory copy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub online: bool,
    pub last_seen: Option<Timestamp>,
    pub points: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    pub error_count: u64,
    pub key_version_pushed: Option<u64>,
    pub key_version_acked: Option<u64>,
}

/// One line of the audit log: who did what, when, and the ids before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: Timestamp,
    pub actor: PrincipalId,
    /// The support access (request id or ticket id) the actor acted under, if any.
    pub via: Option<String>,
    pub account_id: Option<AccountId>,
    pub action: String,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Two accounts that may share assets across (or outside) their trees (rule 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partnership {
    pub id: PartnershipId,
    pub account_a: AccountId,
    pub account_b: AccountId,
    pub created_at: Timestamp,
}

impl Partnership {
    pub fn involves(&self, account: &AccountId) -> bool {
        &self.account_a == account || &self.account_b == account
    }
}

/// Read-only sight of one asset for one other account during `[from, until)` (rule 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: GrantId,
    pub owner_account: AccountId,
    pub asset_id: AssetId,
    pub asset_key: u64,
    pub target: AccountId,
    pub from: Timestamp,
    /// `None`: permanent.
    pub until: Option<Timestamp>,
    /// The partnership the grant needed (a grant to a descendant needs none); ending the
    /// partnership ends the grant.
    pub partnership: Option<PartnershipId>,
    pub created_at: Timestamp,
}

impl Grant {
    pub fn active_at(&self, now: Timestamp) -> bool {
        self.from <= now && self.until.is_none_or(|until| now < until)
    }
}

/// Whom a certificate identifies: a unit (O = device id) or an account's integration
/// (O = account id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CertificateKind {
    Unit,
    Integration,
}

/// One client certificate the gateway CA issued, kept so it can be revoked (DESIGN 4:
/// revoked certificates are refused at the handshake and their sessions closed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// The serial as lowercase hex of its DER content bytes, no separators (the gateway's
    /// `pki::serial_hex`, the one spelling used when issuing and when reading a presented
    /// certificate).
    pub serial: String,
    /// The MQTT tenant the certificate speaks for: its subject Organization, a device id
    /// or an account id.
    pub tenant: String,
    pub kind: CertificateKind,
    /// The subject distinguished name as text, e.g. `O=unit1, CN=unit1`.
    pub subject: String,
    /// The issuer distinguished name as text.
    pub issuer: String,
    /// The end of the validity window; after it the certificate is refused anyway.
    pub not_after: Timestamp,
    pub issued_at: Timestamp,
    /// Set once, by the first revocation; never cleared.
    pub revoked_at: Option<Timestamp>,
}
