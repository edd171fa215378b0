//! Every redb table, in one place.
//!
//! Values are records encoded by [`crate::codec`] (schema version byte + postcard) unless
//! noted. Keys are plain redb types so range scans work without decoding.

use redb::TableDefinition;

/// account id -> [`crate::model::Account`]
pub const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");

/// principal id -> [`crate::model::Principal`] (users and staff)
pub const PRINCIPALS: TableDefinition<&str, &[u8]> = TableDefinition::new("principals");

/// SHA-256 of a bearer token -> principal id. Tokens themselves are never stored.
pub const TOKENS: TableDefinition<&[u8], &str> = TableDefinition::new("tokens");

/// device id -> [`crate::model::Device`]
pub const DEVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("devices");

/// (owner account id, asset id) -> [`crate::model::Asset`]
pub const ASSETS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("assets");

/// (asset key, ts ms) -> [`crate::telemetry::Point`].
///
/// The asset key is the asset's internal `u64` (stable across renames and shares), so one
/// asset's history is one contiguous range and "latest" is `next_back` of that range.
/// One point per asset per millisecond: a QoS 1 redelivery of the same point lands on the
/// same key, which is what makes "stored exactly once" hold across retransmissions.
pub const TELEMETRY: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("telemetry");

/// (asset key, bucket start ms) -> a sealed [`crate::telemetry::chunk`]: the readings of
/// one asset in one ten-minute bucket, moved out of [`TELEMETRY`] once the bucket is an
/// hour old (`telemetry::seal`). A reader merges both tables (`telemetry::stored`).
pub const TELEMETRY_CHUNKS: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("telemetry_chunks");

/// device id -> [`crate::model::DeviceStatus`], written with telemetry batches.
pub const DEVICE_STATUS: TableDefinition<&str, &[u8]> = TableDefinition::new("device_status");

/// Named counters (`next_asset_key`, `next_audit_seq`) as plain `u64`.
pub const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

/// audit sequence -> [`crate::model::AuditEntry`], append-only.
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

/// partnership id -> [`crate::model::Partnership`]
pub const PARTNERSHIPS: TableDefinition<&str, &[u8]> = TableDefinition::new("partnerships");

/// (lower account id, higher account id) -> partnership id: at most one per pair.
pub const PARTNER_PAIRS: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("partner_pairs");

/// grant id -> [`crate::model::Grant`]. Removed and expired grants are deleted (the audit
/// log keeps their history).
pub const GRANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("grants");

/// (asset key, grantee account id) -> grant id: one grant per pair; an asset's audience is
/// one range scan.
pub const GRANT_BY_PAIR: TableDefinition<(u64, &str), &str> = TableDefinition::new("grant_by_pair");

/// (grantee account id, asset id) -> grant id: how a grantee addresses a shared asset, and
/// what keeps an asset id unique within an account.
pub const GRANT_BY_TARGET: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("grant_by_target");

/// (instant ms, grant id) -> () for every future `from` and every `until`: the scheduler's
/// next wake-up is `first()`, what is due is a range up to now.
pub const GRANT_DEADLINES: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("grant_deadlines");

/// support access id -> [`crate::support::SupportAccess`] (requests and cases, all states).
pub const SUPPORT: TableDefinition<&str, &[u8]> = TableDefinition::new("support");

/// (staff id, account id, access id) -> end instant ms, for active access only: what the
/// bearer-token lookup reads on every staff request.
pub const SUPPORT_ACTIVE: TableDefinition<(&str, &str, &str), u64> =
    TableDefinition::new("support_active");

/// (end instant ms, access id) -> () for active access: the scheduler's next wake-up.
pub const SUPPORT_DEADLINES: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("support_deadlines");

/// sharing profile id -> [`crate::tenant::SharingProfile`]
pub const PROFILES: TableDefinition<&str, &[u8]> = TableDefinition::new("profiles");

/// operator id -> operator record (see `crate::operators`).
pub const OPERATORS: TableDefinition<&str, &[u8]> = TableDefinition::new("operators");

/// outbox sequence -> an SMS invitation waiting to be sent (see `crate::operators`);
/// removed only once its sender confirmed it, so nothing is lost across a restart.
pub const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");

/// key id -> key record (see `crate::keys`).
pub const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");

/// (asset key, key id) -> (): the keys of one asset, one range scan.
pub const KEYS_BY_ASSET: TableDefinition<(u64, &str), ()> = TableDefinition::new("keys_by_asset");

/// (operator id, key id) -> (): an operator's personal keys.
pub const KEYS_BY_OPERATOR: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("keys_by_operator");

/// device id -> the version of the key set last built for it (rises with every change,
/// survives restarts).
pub const KEY_VERSIONS: TableDefinition<&str, u64> = TableDefinition::new("key_versions");

/// (instant ms, key id) -> () for every future `valid_from` and every `valid_to`.
pub const KEY_DEADLINES: TableDefinition<(u64, &str), ()> = TableDefinition::new("key_deadlines");

/// (asset key, ts ms, sequence) -> access event reported by the asset's unit.
pub const ACCESS_EVENTS: TableDefinition<(u64, u64, u64), &[u8]> =
    TableDefinition::new("access_events");

/// certificate serial (lowercase hex, see [`crate::model::CertificateRecord::serial`]) ->
/// [`crate::model::CertificateRecord`], for every client certificate the gateway CA issued.
/// Records are never deleted: revocation sets `revoked_at`.
pub const CERTIFICATES: TableDefinition<&str, &[u8]> = TableDefinition::new("certificates");

/// (tenant, serial) -> (): a tenant's certificates (device id or account id), one range
/// scan.
pub const CERTIFICATES_BY_TENANT: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("certificates_by_tenant");

/// principal id -> when (ms) an admin disabled the user; a disabled user has no token.
pub const DISABLED_USERS: TableDefinition<&str, u64> = TableDefinition::new("disabled_users");

/// tenant (device id or account id) -> instant ms: every certificate of the tenant issued
/// before it is refused, recorded or not (certificates issued before the CA recorded
/// them can only be revoked this way). Only ever moves later.
pub const REVOKED_BEFORE: TableDefinition<&str, u64> = TableDefinition::new("revoked_before");

/// principal id -> when (ms) its token last authenticated a request, as flushed from the
/// gateway's in-memory tracker (at most one flush interval behind; removed with the
/// principal).
pub const LAST_USED: TableDefinition<&str, u64> = TableDefinition::new("last_used");

/// account id -> the account's own telemetry retention in whole days (1 to
/// `retention::MAX_ACCOUNT_DAYS`); no row: the global default (see `crate::retention`).
/// A table of its own, not a field of the postcard-encoded account record: postcard is not
/// self-describing, so records written before the field existed would stop decoding.
pub const TELEMETRY_RETENTION: TableDefinition<&str, u32> =
    TableDefinition::new("telemetry_retention");
/// arrival id -> (kind 0 point / 1 access event, asset key, ts ms, access sequence (0 for a
/// point), arrived at ms): the arrival index live streams resume from (see
/// [`crate::arrivals`]). Written in the group commit of the record it names; pruned after
/// [`crate::arrivals::RETENTION_MS`].
pub const ARRIVALS: TableDefinition<u64, (u8, u64, u64, u64, u64)> =
    TableDefinition::new("arrivals");
/// (device id, packet id modulo [`crate::stamps::SLOTS`]) -> (packet id, payload hash,
/// stamp ms): the stamps given to a unit's unstamped QoS 1/2 points (see
/// [`crate::stamps`]).
pub const UNIT_STAMPS: TableDefinition<(&str, u16), (u16, u64, u64)> =
    TableDefinition::new("unit_stamps");

/// principal id -> the user's console password as an argon2id PHC string (see
/// [`crate::sign_in`]); no row: the user has none yet and signs in with its API token.
pub const PASSWORDS: TableDefinition<&str, &str> = TableDefinition::new("passwords");

/// SHA-256 of a console session secret -> [`crate::sign_in::SessionRecord`] (postcard).
/// Removed at sign-out and when the user is disabled, changes role or is deleted; an
/// expired row no longer authenticates and is removed at the user's next sign-in.
pub const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");

/// SHA-256 of a one-time password invitation -> [`crate::sign_in::InvitationRecord`]
/// (postcard). Removed when used, replaced when the admin issues another.
pub const PASSWORD_INVITATIONS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("password_invitations");

/// customer id -> [`crate::customers::Customer`] (postcard): whom an account's keys are for.
pub const CUSTOMERS: TableDefinition<&str, &[u8]> = TableDefinition::new("customers");

/// key id -> customer id: the customer a key names, if any. A table of its own so key
/// records written before customers existed still decode (postcard is not self-describing).
pub const KEY_CUSTOMERS: TableDefinition<&str, &str> = TableDefinition::new("key_customers");

/// asset internal key -> (owning account id, deleted at ms): a deleted asset whose history
/// still waits for retention (DESIGN 5.1, `DELETE /assets/{x}`). The retention plan reads it
/// with the assets, under the owner's setting.
pub const RETIRED_ASSETS: TableDefinition<u64, (&str, u64)> =
    TableDefinition::new("retired_assets");

/// outbox seq -> (): the outbox entries that tell an operator of a personal key (not an
/// invitation), so their delivery leaves the operator's invitation status alone. Removed
/// with the entry.
pub const KEY_NOTICES: TableDefinition<u64, ()> = TableDefinition::new("key_notices");
