//! The support-access side of the control API: platform staff, support access requests and
//! the account admin's decisions on them, support cases, and the three lists (DESIGN.md
//! section 5.1, rule 4).
//!
//! Kept in its own file for the same reason as `sharing.rs`; the shapes are the simulator's
//! own copy of the contract, so a gateway that drifts from them fails to decode here instead
//! of being silently followed. The state and duration enums have no catch-all variant on
//! purpose: an unknown state is exactly the drift a support-access check must notice.

use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::types::{opaque_id, AccountId, Asset, NewAsset, OpaqueId, PrincipalId};
use super::{ApiClient, ApiError};

opaque_id!(
    /// A support access's id as the gateway assigned it: a request's or a support case's
    /// (both are support accesses and share the lists).
    SupportAccessId
);

/// The roles of platform staff (rule 4); staff belong to no account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    PlatformAdmin,
    Support,
    TechSupport,
}

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::PlatformAdmin => "platform_admin",
            StaffRole::Support => "support",
            StaffRole::TechSupport => "tech_support",
        }
    }
}

impl fmt::Display for StaffRole {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Answer of `POST /v1/staff`; the token is shown only here.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedStaff {
    pub id: PrincipalId,
    pub name: String,
    pub role: StaffRole,
    /// Always `None`: staff belong to no account. Kept so a gateway that says otherwise can
    /// be caught.
    #[serde(default)]
    pub account_id: Option<AccountId>,
    pub token: String,
}

impl fmt::Debug for CreatedStaff {
    /// Leaves out the token: staff tokens open every account that grants them access.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("CreatedStaff")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

/// How long approved support access lasts, counted from the approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SupportDuration {
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "14d")]
    TwoWeeks,
    #[serde(rename = "3mo")]
    ThreeMonths,
}

impl SupportDuration {
    pub fn as_str(self) -> &'static str {
        match self {
            SupportDuration::Day => "24h",
            SupportDuration::TwoWeeks => "14d",
            SupportDuration::ThreeMonths => "3mo",
        }
    }

    /// The shortest and longest the access may last in seconds: a calendar span of three
    /// months is 89 to 92 days depending on where it starts, the others are exact.
    pub fn bounds_s(self) -> (i64, i64) {
        const DAY: i64 = 24 * 3600;
        match self {
            SupportDuration::Day => (DAY, DAY),
            SupportDuration::TwoWeeks => (14 * DAY, 14 * DAY),
            SupportDuration::ThreeMonths => (89 * DAY, 92 * DAY),
        }
    }
}

impl fmt::Display for SupportDuration {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Where a support access stands; every state but `pending` and `active` is archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportState {
    Pending,
    Active,
    Declined,
    Revoked,
    Expired,
    Closed,
}

impl SupportState {
    pub fn as_str(self) -> &'static str {
        match self {
            SupportState::Pending => "pending",
            SupportState::Active => "active",
            SupportState::Declined => "declined",
            SupportState::Revoked => "revoked",
            SupportState::Expired => "expired",
            SupportState::Closed => "closed",
        }
    }

    /// The one list an access in this state must appear in (rule 4 keeps them separate).
    pub fn list(self) -> SupportList {
        match self {
            SupportState::Pending => SupportList::Pending,
            SupportState::Active => SupportList::Active,
            SupportState::Declined
            | SupportState::Revoked
            | SupportState::Expired
            | SupportState::Closed => SupportList::Archived,
        }
    }
}

impl fmt::Display for SupportState {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The `?state=` of `GET /v1/accounts/{a}/support-access`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportList {
    Pending,
    Active,
    Archived,
}

impl SupportList {
    pub fn as_str(self) -> &'static str {
        match self {
            SupportList::Pending => "pending",
            SupportList::Active => "active",
            SupportList::Archived => "archived",
        }
    }
}

impl fmt::Display for SupportList {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// What the account admin does with a request; each is its own `POST .../{decision}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportDecision {
    Approve,
    Decline,
    Revoke,
}

impl SupportDecision {
    /// The last path segment, and the word in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            SupportDecision::Approve => "approve",
            SupportDecision::Decline => "decline",
            SupportDecision::Revoke => "revoke",
        }
    }
}

impl fmt::Display for SupportDecision {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A support access (request or case) as every support endpoint returns it. Times are
/// RFC 3339; `duration` is `None` only if the gateway leaves it out for cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupportView {
    pub id: SupportAccessId,
    pub account_id: AccountId,
    pub staff_id: PrincipalId,
    pub staff_role: StaffRole,
    pub purpose: String,
    #[serde(default)]
    pub duration: Option<SupportDuration>,
    /// Set for support cases only.
    #[serde(default)]
    pub ticket_id: Option<String>,
    pub state: SupportState,
    pub requested_at: String,
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub ends_at: Option<String>,
    /// Who approved or declined (the opener, for a case).
    #[serde(default)]
    pub decided_by: Option<PrincipalId>,
    #[serde(default)]
    pub decided_at: Option<String>,
    /// Who revoked or closed it (`scheduler` for an expiry).
    #[serde(default)]
    pub ended_by: Option<PrincipalId>,
    #[serde(default)]
    pub ended_at: Option<String>,
}

impl SupportView {
    /// What the audit log's `via` names for actions under this access: the ticket for a
    /// case, the request id otherwise (rule 4: "shown with its ticket id").
    pub fn via(&self) -> String {
        match &self.ticket_id {
            Some(ticket) => format!("ticket {ticket}"),
            None => format!("request {}", self.id),
        }
    }
}

/// The query of the support-access lists.
#[derive(Serialize)]
struct ListQuery {
    state: SupportList,
}

/// The query that makes a call act in another account than the caller's own: staff have
/// none, so everything they do under support access names the account.
#[derive(Serialize)]
struct InAccount<'a> {
    account_id: &'a AccountId,
}

impl ApiClient {
    /// `POST /v1/staff` (platform_admin); the answer carries the token (shown once).
    pub async fn create_staff(
        &self,
        name: &str,
        role: StaffRole,
    ) -> Result<CreatedStaff, ApiError> {
        #[derive(Serialize)]
        struct Body<'a> {
            name: &'a str,
            role: StaffRole,
        }
        self.send(
            Method::POST,
            &["staff"],
            Some(&Body { name, role }),
            "staff",
        )
        .await
    }

    /// `POST /v1/support-access/requests` (support staff): a pending request.
    pub async fn request_support_access(
        &self,
        account_id: &AccountId,
        purpose: &str,
        duration: SupportDuration,
    ) -> Result<SupportView, ApiError> {
        #[derive(Serialize)]
        struct Body<'a> {
            account_id: &'a AccountId,
            purpose: &'a str,
            duration: SupportDuration,
        }
        let body = Body {
            account_id,
            purpose,
            duration,
        };
        self.send(
            Method::POST,
            &["support-access", "requests"],
            Some(&body),
            "support access",
        )
        .await
    }

    /// `POST /v1/support-access/requests/{id}/{approve|decline|revoke}` (that account's
    /// admin). An invalid transition answers 409.
    pub async fn decide_support_access(
        &self,
        id: &SupportAccessId,
        decision: SupportDecision,
    ) -> Result<SupportView, ApiError> {
        let id = id.to_string();
        self.fetch(
            Method::POST,
            &["support-access", "requests", &id, decision.as_str()],
            "support access",
        )
        .await
    }

    /// `POST /v1/support-access/requests/{id}/approve`.
    pub async fn approve_support_access(
        &self,
        id: &SupportAccessId,
    ) -> Result<SupportView, ApiError> {
        self.decide_support_access(id, SupportDecision::Approve)
            .await
    }

    /// `POST /v1/support-access/requests/{id}/decline`.
    pub async fn decline_support_access(
        &self,
        id: &SupportAccessId,
    ) -> Result<SupportView, ApiError> {
        self.decide_support_access(id, SupportDecision::Decline)
            .await
    }

    /// `POST /v1/support-access/requests/{id}/revoke`; by the time it answers, the staff
    /// member's next request in the account is refused.
    pub async fn revoke_support_access(
        &self,
        id: &SupportAccessId,
    ) -> Result<SupportView, ApiError> {
        self.decide_support_access(id, SupportDecision::Revoke)
            .await
    }

    /// `GET /v1/accounts/{a}/support-access?state=…`, every page (the account's admin;
    /// staff).
    pub async fn list_support_access(
        &self,
        account_id: &AccountId,
        list: SupportList,
    ) -> Result<Vec<SupportView>, ApiError> {
        let account = account_id.to_string();
        self.all_pages(
            &["accounts", &account, "support-access"],
            &ListQuery { state: list },
            "support access page",
        )
        .await
    }

    /// `POST /v1/support-cases` (tech_support, platform_admin): tech support access that is
    /// active at once, without approval.
    pub async fn open_support_case(
        &self,
        account_id: &AccountId,
        ticket_id: &str,
    ) -> Result<SupportView, ApiError> {
        #[derive(Serialize)]
        struct Body<'a> {
            account_id: &'a AccountId,
            ticket_id: &'a str,
        }
        let body = Body {
            account_id,
            ticket_id,
        };
        self.send(
            Method::POST,
            &["support-cases"],
            Some(&body),
            "support case",
        )
        .await
    }

    /// `POST /v1/support-cases/{id}/close`; closing a closed case answers 409.
    pub async fn close_support_case(&self, id: &SupportAccessId) -> Result<SupportView, ApiError> {
        let id = id.to_string();
        self.fetch(
            Method::POST,
            &["support-cases", &id, "close"],
            "support case",
        )
        .await
    }

    /// `POST /v1/assets?account_id={a}`: an asset of account `a` rather than the caller's
    /// own, which is how staff act as an admin under support access (and how an ancestor's
    /// admin acts in a sub-account).
    pub async fn create_asset_in(
        &self,
        account_id: &AccountId,
        asset: &NewAsset,
    ) -> Result<Asset, ApiError> {
        let request = self
            .request(Method::POST, &["assets"])
            .query(&InAccount { account_id })
            .json(asset);
        self.execute(request, "asset").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIEW: &str = r#"{"id":"req-7","account_id":"acc1","staff_id":"stf2",
        "staff_role":"support","purpose":"dropouts","duration":"24h","ticket_id":null,
        "state":"active","requested_at":"2025-01-01T00:00:00Z",
        "starts_at":"2025-01-01T00:01:00Z","ends_at":"2025-01-02T00:01:00Z",
        "decided_by":"usr3","decided_at":"2025-01-01T00:01:00Z","ended_by":null,
        "ended_at":null}"#;

    #[test]
    fn support_view_parses_the_documented_shape() {
        let view: SupportView = serde_json::from_str(VIEW).expect("view");
        assert_eq!(view.id, SupportAccessId::new("req-7"));
        assert_eq!(view.staff_role, StaffRole::Support);
        assert_eq!(view.duration, Some(SupportDuration::Day));
        assert_eq!(view.state, SupportState::Active);
        assert_eq!(view.decided_by, Some(PrincipalId::new("usr3")));
        assert_eq!(view.ended_at, None);
        assert_eq!(view.via(), "request req-7");
    }

    #[test]
    fn a_case_is_named_by_its_ticket() {
        let mut view: SupportView = serde_json::from_str(VIEW).expect("view");
        view.ticket_id = Some("TCK-1".into());
        assert_eq!(view.via(), "ticket TCK-1");
    }

    #[test]
    fn unknown_states_and_durations_do_not_decode() {
        assert!(serde_json::from_str::<SupportState>("\"paused\"").is_err());
        assert!(serde_json::from_str::<SupportDuration>("\"1y\"").is_err());
        assert!(serde_json::from_str::<StaffRole>("\"admin\"").is_err());
    }

    #[test]
    fn wire_names_match_the_contract() {
        for duration in [
            SupportDuration::Day,
            SupportDuration::TwoWeeks,
            SupportDuration::ThreeMonths,
        ] {
            let wire = serde_json::to_value(duration).expect("encode");
            assert_eq!(wire, duration.as_str());
        }
        let role = serde_json::to_value(StaffRole::TechSupport).expect("encode");
        assert_eq!(role, "tech_support");
        assert_eq!(SupportState::Revoked.list(), SupportList::Archived);
        assert_eq!(SupportState::Pending.list(), SupportList::Pending);
        assert_eq!(SupportState::Active.list(), SupportList::Active);
    }

    #[test]
    fn created_staff_debug_hides_the_token() {
        let staff: CreatedStaff = serde_json::from_str(
            r#"{"id":"stf1","name":"s","role":"support","account_id":null,"token":"secret"}"#,
        )
        .expect("staff");
        assert_eq!(staff.account_id, None);
        assert!(!format!("{staff:?}").contains("secret"));
    }

    #[test]
    fn paths_and_queries_follow_the_contract() {
        let client = ApiClient::new("http://127.0.0.1:9/", "t").expect("client");
        let decide = client
            .request(
                Method::POST,
                &[
                    "support-access",
                    "requests",
                    "req-1",
                    SupportDecision::Revoke.as_str(),
                ],
            )
            .build()
            .expect("request");
        assert_eq!(
            decide.url().as_str(),
            "http://127.0.0.1:9/v1/support-access/requests/req-1/revoke"
        );
        let list = client
            .page_request(
                &["accounts", "acc1", "support-access"],
                &ListQuery {
                    state: SupportList::Archived,
                },
                None,
            )
            .build()
            .expect("request");
        assert_eq!(list.url().query(), Some("state=archived"));
        let asset = client
            .request(Method::POST, &["assets"])
            .query(&InAccount {
                account_id: &AccountId::new("acc 1"),
            })
            .build()
            .expect("request");
        assert_eq!(asset.url().query(), Some("account_id=acc+1"));
    }
}
