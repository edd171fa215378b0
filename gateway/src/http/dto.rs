//! Request and response bodies of the control API. They are the public contract (and the
//! OpenAPI schemas); storage records stay internal and are converted here.

use serde::{Deserialize, Serialize};
use storage::ids::IdError;
use storage::model::{Account, Asset, Capabilities, Principal, PrincipalKind};
use storage::time::Timestamp;
use storage::visibility::{Relation, Seen};
use storage::OpError;
use utoipa::{IntoParams, ToSchema};

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// Parses an id from a body or query field, naming the field when it is refused.
pub fn id_field<T>(field: &str, parsed: Result<T, IdError>) -> Result<T, OpError> {
    parsed.map_err(|err| OpError::invalid(field, err.to_string()))
}

/// A time from the query string (RFC 3339), or `default` when absent. A `+` offset sent
/// unencoded arrives as a space (`+` means a space in a query string), so that case is
/// refused saying to encode it as `%2B`. Body (JSON) times do not need this.
pub fn query_time(
    field: &str,
    raw: Option<&str>,
    default: Timestamp,
) -> Result<Timestamp, OpError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    if let Some(parsed) = Timestamp::parse_rfc3339(raw) {
        return Ok(parsed);
    }
    let message = match unencoded_plus(raw) {
        Some(meant) => format!(
            "{raw:?} has a space where the offset's + belongs: a + in a query string means a \
             space, so encode it as %2B ({field}={})",
            meant.replace('+', "%2B")
        ),
        None => "must be an RFC 3339 time, e.g. 2026-11-25T10:00:00Z".to_owned(),
    };
    Err(OpError::invalid(field, message))
}

/// The time meant when the `+` of a `+HH:MM` offset arrived as a space, if that parses.
fn unencoded_plus(raw: &str) -> Option<String> {
    let (time, offset) = raw.rsplit_once(' ')?;
    let meant = format!("{time}+{offset}");
    Timestamp::parse_rfc3339(&meant).map(|_| meant)
}

/// Paging limit from the query string (kept as text there, so a bad value is refused
/// naming `limit` instead of a generic query error).
pub fn limit(raw: Option<&str>) -> Result<usize, OpError> {
    let parsed = raw
        .map(|raw| {
            raw.parse::<usize>()
                .map_err(|_| OpError::invalid("limit", "must be a whole number"))
        })
        .transpose()?;
    match parsed {
        None => Ok(DEFAULT_LIMIT),
        Some(0) => Err(OpError::invalid("limit", "must be at least 1")),
        Some(n) if n > MAX_LIMIT => Err(OpError::invalid(
            "limit",
            format!("must be at most {MAX_LIMIT}"),
        )),
        Some(n) => Ok(n),
    }
}

/// A list answer (design 5.1): one page of `page` shown as `view` shows an item.
pub fn list_answer<T, V: Serialize>(
    request: &actix_web::HttpRequest,
    page: storage::read::Page<T>,
    view: impl FnMut(T) -> V,
) -> actix_web::HttpResponse {
    let items: Vec<V> = page.items.into_iter().map(view).collect();
    let mut answer = super::link::ok_page(request, page.next_cursor.as_deref());
    let mut body = serde_json::json!({ "items": items });
    if let Some(next) = page.next_cursor {
        body["next_cursor"] = next.into();
    }
    answer.json(body)
}

/// One page of the list named `list`, read whole, by `key` (`storage::paging`): `cursor`
/// and `limit` as the query string gave them, the limit checked by [`limit`], the cursor by
/// `storage::paging::cursor_key` (one that `list` did not give is refused).
pub fn page_by<T>(
    list: &str,
    items: impl IntoIterator<Item = T>,
    (cursor, raw_limit): (Option<&str>, Option<&str>),
    key: impl Fn(&T) -> String,
) -> Result<storage::read::Page<T>, OpError> {
    storage::paging::page_of(items, (list, cursor), limit(raw_limit)?, key)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    pub principal_id: String,
    pub name: String,
    /// `user` or `staff`.
    #[schema(schema_with = super::openapi::principal_kind)]
    pub kind: &'static str,
    #[schema(schema_with = super::openapi::any_role)]
    pub role: &'static str,
    pub account_id: Option<String>,
}

impl From<&Principal> for MeView {
    fn from(principal: &Principal) -> Self {
        MeView {
            principal_id: principal.id.to_string(),
            name: principal.name.clone(),
            kind: match principal.kind {
                PrincipalKind::User { .. } => "user",
                PrincipalKind::Staff { .. } => "staff",
            },
            role: principal.role_name(),
            account_id: principal.home_account().map(ToString::to_string),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    #[schema(min_length = 1)]
    pub name: String,
    pub parent_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub created_at: String,
}

impl From<Account> for AccountView {
    fn from(account: Account) -> Self {
        AccountView {
            id: account.id.to_string(),
            name: account.name,
            parent_id: account.parent_id.map(|id| id.to_string()),
            created_at: account.created_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPrincipal {
    #[schema(min_length = 1)]
    pub name: String,
    /// Users: `admin`, `fleet_admin`, `viewer`. Staff: `platform_admin`, `support`,
    /// `tech_support`.
    #[schema(schema_with = super::openapi::any_role)]
    pub role: String,
}

/// A created user or staff member. The token is shown only in this answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrincipalCreated {
    pub id: String,
    pub name: String,
    #[schema(schema_with = super::openapi::any_role)]
    pub role: &'static str,
    pub account_id: Option<String>,
    pub token: String,
}

impl PrincipalCreated {
    pub fn new(principal: &Principal, token: String) -> Self {
        PrincipalCreated {
            id: principal.id.to_string(),
            name: principal.name.clone(),
            role: principal.role_name(),
            account_id: principal.home_account().map(ToString::to_string),
            token,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesDto {
    #[serde(default)]
    pub bluetooth_relay: bool,
    #[serde(default)]
    pub keypad: bool,
    #[serde(default)]
    pub dualid: bool,
}

impl From<CapabilitiesDto> for Capabilities {
    fn from(dto: CapabilitiesDto) -> Self {
        Capabilities {
            bluetooth_relay: dto.bluetooth_relay,
            keypad: dto.keypad,
            dualid: dto.dualid,
        }
    }
}

impl From<Capabilities> for CapabilitiesDto {
    fn from(caps: Capabilities) -> Self {
        CapabilitiesDto {
            bluetooth_relay: caps.bluetooth_relay,
            keypad: caps.keypad,
            dualid: caps.dualid,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    /// ASCII letters and digits only: it is the unit's MQTT tenant id.
    pub id: String,
    #[serde(default)]
    pub capabilities: CapabilitiesDto,
    /// A PEM CSR; when given the unit keeps its private key and none is returned.
    pub csr_pem: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceCreated {
    pub id: String,
    pub account_id: String,
    pub capabilities: CapabilitiesDto,
    pub ca_pem: Option<String>,
    pub cert_pem: Option<String>,
    pub key_pem: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAssetDto {
    pub id: String,
    pub name: String,
    pub serial: Option<String>,
    pub device_id: Option<String>,
    /// Sections: counters, groups, working_hours, service_flags, calibration, display.
    #[schema(value_type = Option<Object>)]
    pub details: Option<storage::details::AssetDetails>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssetView {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub serial: Option<String>,
    pub device_id: Option<String>,
    /// `owned`, `shared` (visibility grant) or `mirror` (tenant sharing).
    #[schema(schema_with = super::openapi::relation)]
    pub relation: &'static str,
    pub created_at: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// For a shared asset with a temporary grant: when the sight ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visible_until: Option<String>,
}

impl AssetView {
    /// An asset of the caller's own account (owned, or a mirror it holds).
    pub fn owned(asset: Asset) -> Self {
        AssetView::from(storage::visibility::owned_or_mirror(asset))
    }
}

impl From<Seen> for AssetView {
    fn from(seen: Seen) -> Self {
        let asset = seen.asset;
        let owned = seen.relation == Relation::Owned;
        AssetView {
            id: asset.id.to_string(),
            account_id: asset.account_id.to_string(),
            name: asset.name,
            serial: asset.serial,
            // Which unit reports for an asset is the owner's business.
            device_id: asset.device_id.filter(|_| owned).map(|id| id.to_string()),
            relation: seen.relation.as_str(),
            created_at: asset.created_at.to_rfc3339(),
            details: storage::details::to_json(&asset.details),
            visible_until: seen
                .grant
                .and_then(|grant| grant.until)
                .map(|t| t.to_rfc3339()),
        }
    }
}

/// The fields of an asset its owner may change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetPatch {
    pub name: Option<String>,
    pub serial: Option<String>,
    /// Sections given replace the asset's; absent sections are kept.
    #[schema(value_type = Option<Object>)]
    pub details: Option<storage::details::AssetDetails>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssetList {
    pub items: Vec<AssetView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Paging and the account to act in (default: the caller's own).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub cursor: Option<String>,
    pub limit: Option<String>,
    /// A descendant account the caller's role extends to.
    pub account_id: Option<String>,
}

/// `?cursor=&limit=` of a list that has no other parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
    /// 1 to 1000; 100 when absent.
    pub limit: Option<String>,
}

impl PageQuery {
    pub fn paging(&self) -> (Option<&str>, Option<&str>) {
        (self.cursor.as_deref(), self.limit.as_deref())
    }
}

/// `GET /v1/assets`: paging, the account, and the search.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AssetListQuery {
    pub cursor: Option<String>,
    pub limit: Option<String>,
    pub account_id: Option<String>,
    /// Part of the asset's id, name or serial, in any case.
    pub q: Option<String>,
    /// `owned`, `shared` or `mirror`.
    pub relation: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AccountQuery {
    pub account_id: Option<String>,
}

/// A live stream's query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    pub account_id: Option<String>,
    /// Resume after this event id, for clients that cannot send the `Last-Event-ID`
    /// header (an `EventSource` on its first connect); the header wins when both are sent.
    pub last_event_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// RFC 3339, inclusive. Default: the beginning.
    pub from: Option<String>,
    /// RFC 3339, exclusive. Default: the end of time.
    pub to: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
    pub account_id: Option<String>,
}

/// History: points oldest first, each as `GET .../latest` shows one.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointList {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceStatusView {
    pub device_id: String,
    pub online: bool,
    pub last_seen: Option<String>,
    pub points: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub error_count: u64,
    pub key_version_pushed: Option<u64>,
    pub key_version_acked: Option<u64>,
    /// Since when the current session is open (absent while offline).
    pub connected_since: Option<String>,
    /// Sessions opened since the gateway started.
    pub connects: u64,
    /// Of those, how many replaced a live session of the same unit (session takeover).
    pub takeovers: u64,
    /// Why the last session ended (`client_disconnect`, `connection_lost`,
    /// `keep_alive_timeout`, `taken_over`, `revoked`, `shutting_down`, ...).
    pub last_disconnect_reason: Option<String>,
    pub last_disconnect_at: Option<String>,
    /// How far the unit's clock runs from the gateway's, ms (positive: ahead): the median
    /// of `ts - arrival` over its recent points that carried their own `ts` and arrived
    /// within a minute of it (buffered uploads do not count). Absent until such a point
    /// arrives after the gateway started.
    pub clock_offset_ms: Option<i64>,
}

impl DeviceStatusView {
    pub fn new(device_id: &str, live: actors::device::LiveStatus) -> Self {
        let status = live.stored;
        let session = live.session;
        DeviceStatusView {
            device_id: device_id.to_owned(),
            online: status.online,
            last_seen: status.last_seen.map(|t| t.to_rfc3339()),
            points: status.points,
            last_error: status.last_error,
            last_error_at: status.last_error_at.map(|t| t.to_rfc3339()),
            error_count: status.error_count,
            key_version_pushed: status.key_version_pushed,
            key_version_acked: status.key_version_acked,
            connected_since: session.connected_since.map(|t| t.to_rfc3339()),
            connects: session.connects,
            takeovers: session.takeovers,
            last_disconnect_reason: session.last_disconnect_reason,
            last_disconnect_at: session.last_disconnect_at.map(|t| t.to_rfc3339()),
            clock_offset_ms: live.clock_offset_ms,
        }
    }
}

/// `Some(value)` for a field that is present, `null` included, so absent and `null` differ.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(raw: &str) -> String {
        match query_time("from", Some(raw), Timestamp(0)) {
            Err(OpError::Invalid { field, reason }) => format!("{field}: {reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_plus_offset_that_arrived_as_a_space_is_refused_naming_percent_2b() {
        assert_eq!(
            refusal("2026-11-25T10:00:00 01:00"),
            "from: \"2026-11-25T10:00:00 01:00\" has a space where the offset's + belongs: a + \
             in a query string means a space, so encode it as %2B \
             (from=2026-11-25T10:00:00%2B01:00)"
        );
        assert_eq!(
            refusal("2026-11-25T10:00:00.5 05:30"),
            "from: \"2026-11-25T10:00:00.5 05:30\" has a space where the offset's + belongs: \
             a + in a query string means a space, so encode it as %2B \
             (from=2026-11-25T10:00:00.5%2B05:30)"
        );
    }

    #[test]
    fn other_bad_times_get_the_plain_refusal() {
        for raw in [
            "yesterday",
            "2026-11-25T10:00:00 99:00",
            "2026-11-25T10:00 01:00",
            "",
        ] {
            assert_eq!(
                refusal(raw),
                "from: must be an RFC 3339 time, e.g. 2026-11-25T10:00:00Z",
                "{raw:?}"
            );
        }
        let encoded = query_time("to", Some("2026-11-25T10:00:00+01:00"), Timestamp(0));
        assert_eq!(
            encoded.ok(),
            Timestamp::parse_rfc3339("2026-11-25T09:00:00Z")
        );
        assert_eq!(
            query_time("to", None, Timestamp(7)).ok(),
            Some(Timestamp(7))
        );
    }
}
