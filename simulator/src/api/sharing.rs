//! The sharing side of the control API: partnerships, sub-account listings, visibility
//! grants and the audit log (DESIGN.md section 5.1, rules 2 and 3).
//!
//! Kept out of `types.rs` and `mod.rs` so each file stays readable; the shapes are the
//! simulator's own copy of the contract, for the same reason as in `types.rs`: a gateway that
//! drifts from the documented shapes must fail to decode here, not be silently followed.

use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::types::{opaque_id, Account, AccountId, AssetId, OpaqueId, PrincipalId};
use super::{ApiClient, ApiError};

opaque_id!(
    /// A partnership's id as the gateway assigned it.
    PartnershipId
);
opaque_id!(
    /// A visibility grant's id as the gateway assigned it; `DELETE` takes it back.
    GrantId
);

/// Answer of `POST /v1/partnerships` and an item of `GET /v1/partnerships`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partnership {
    pub id: PartnershipId,
    pub account_a: AccountId,
    pub account_b: AccountId,
    /// RFC 3339.
    pub created_at: String,
}

/// Answer of `DELETE /v1/partnerships/{id}`: ending a partnership also ends the grants that
/// only it allowed, and the answer names them so a caller can tell whose sight went away.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndedPartnership {
    pub id: PartnershipId,
    #[serde(default)]
    pub ended_grants: Vec<GrantId>,
}

/// Body of `POST /v1/visibility/grants`. `account_id` is the grantee; the assets are the
/// caller's account's. Without `from` the gateway starts the grant now; without `until` it is
/// permanent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewGrants {
    pub account_id: AccountId,
    pub asset_ids: Vec<AssetId>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// RFC 3339; exclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

impl NewGrants {
    /// Permanent grants starting now: the common case of the admin flow.
    pub fn permanent(account_id: AccountId, asset_ids: Vec<AssetId>) -> Self {
        Self {
            account_id,
            asset_ids,
            from: None,
            until: None,
        }
    }
}

/// Body of `POST /v1/visibility/remove`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantRemoval {
    pub account_id: AccountId,
    pub asset_ids: Vec<AssetId>,
}

/// What a bulk grant call did (or, in a dry run, would do) to one grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantChange {
    Created,
    Updated,
    Unchanged,
    /// A value this simulator does not know; kept so a newer gateway still parses.
    #[serde(other)]
    Unknown,
}

/// A visibility grant as every grant endpoint returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub id: GrantId,
    pub asset_id: AssetId,
    pub owner_account_id: AccountId,
    /// The grantee.
    pub account_id: AccountId,
    /// RFC 3339.
    pub from: String,
    /// RFC 3339; `None` is a permanent grant.
    #[serde(default)]
    pub until: Option<String>,
    /// Whether the grant gives sight right now (inside `[from, until)` and not removed).
    pub active: bool,
    /// Set by the bulk calls; the contract does not say whether listings carry it, so a
    /// missing value is accepted.
    #[serde(default)]
    pub change: Option<GrantChange>,
}

/// Answer of the bulk grant and remove calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantBatch {
    /// Echoes `?dry_run=true`: nothing was changed.
    pub dry_run: bool,
    pub items: Vec<Grant>,
}

/// Filters of `GET /v1/visibility/grants`; `None` fields are left out of the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GrantQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<AssetId>,
    /// The grantee.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
}

/// Filters of `GET /v1/audit`; `None` fields are left out of the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The audit answer is one page without a cursor, so a caller that needs more than the
    /// gateway's default page (100, section 5) asks for up to 1000 here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// One audit record: who did what to which object, and when; `before`/`after` are the ids
/// the change replaced and introduced, when it had any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Grows with every record, so a test can read "everything after" a point in time.
    pub seq: u64,
    /// RFC 3339.
    pub at: String,
    /// The user or staff member who acted.
    pub actor: PrincipalId,
    /// The support access (request or ticket id) the actor acted under, if any.
    #[serde(default)]
    pub via: Option<String>,
    #[serde(default)]
    pub account_id: Option<AccountId>,
    pub action: String,
    pub target: String,
    #[serde(default)]
    pub before: Option<String>,
    #[serde(default)]
    pub after: Option<String>,
}

impl ApiClient {
    /// `POST /v1/partnerships` (platform_admin).
    pub async fn create_partnership(
        &self,
        account_a: &AccountId,
        account_b: &AccountId,
    ) -> Result<Partnership, ApiError> {
        #[derive(Serialize)]
        struct Body<'a> {
            account_a: &'a AccountId,
            account_b: &'a AccountId,
        }
        let body = Body {
            account_a,
            account_b,
        };
        self.send(Method::POST, &["partnerships"], Some(&body), "partnership")
            .await
    }

    /// `DELETE /v1/partnerships/{id}` (platform_admin).
    pub async fn end_partnership(&self, id: &PartnershipId) -> Result<EndedPartnership, ApiError> {
        let id = id.to_string();
        self.fetch(Method::DELETE, &["partnerships", &id], "ended partnership")
            .await
    }

    /// `GET /v1/partnerships`, every page.
    pub async fn list_partnerships(&self) -> Result<Vec<Partnership>, ApiError> {
        self.all_pages(&["partnerships"], &super::NoQuery, "partnership page")
            .await
    }

    /// `GET /v1/accounts/{a}/children`, every page.
    pub async fn account_children(&self, account_id: &AccountId) -> Result<Vec<Account>, ApiError> {
        let account = account_id.to_string();
        self.all_pages(
            &["accounts", &account, "children"],
            &super::NoQuery,
            "account page",
        )
        .await
    }

    /// `POST /v1/visibility/grants[?dry_run=true]`: all or nothing.
    pub async fn grant_visibility(
        &self,
        grants: &NewGrants,
        dry_run: bool,
    ) -> Result<GrantBatch, ApiError> {
        let request = dry_run_query(
            self.request(Method::POST, &["visibility", "grants"]),
            dry_run,
        )
        .json(grants);
        self.execute(request, "grant batch").await
    }

    /// `POST /v1/visibility/remove[?dry_run=true]`: all or nothing; the answer lists the
    /// removed grants.
    pub async fn remove_visibility(
        &self,
        removal: &GrantRemoval,
        dry_run: bool,
    ) -> Result<GrantBatch, ApiError> {
        let request = dry_run_query(
            self.request(Method::POST, &["visibility", "remove"]),
            dry_run,
        )
        .json(removal);
        self.execute(request, "removed grants").await
    }

    /// `DELETE /v1/visibility/grants/{id}`. Returns the success status (the contract says
    /// 204) so callers can hold the gateway to it; by the time this returns, no point
    /// published afterwards may reach the former grantee.
    pub async fn delete_grant(&self, id: &GrantId) -> Result<u16, ApiError> {
        let id = id.to_string();
        let request = self.request(Method::DELETE, &["visibility", "grants", &id]);
        self.execute_status(request).await
    }

    /// `GET /v1/visibility/grants`, every page: the owner sees all its grants, a grantee its
    /// own.
    pub async fn list_grants(&self, query: &GrantQuery) -> Result<Vec<Grant>, ApiError> {
        self.all_pages(&["visibility", "grants"], query, "grant page")
            .await
    }

    /// `GET /v1/audit`, every page.
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, ApiError> {
        self.all_pages(&["audit"], query, "audit page").await
    }
}

/// Adds `?dry_run=true` only when asked: a gateway treats a missing flag as a real run, and
/// leaving it out keeps the ordinary request exactly as the contract's examples show it.
pub(super) fn dry_run_query(
    request: reqwest::RequestBuilder,
    dry_run: bool,
) -> reqwest::RequestBuilder {
    if dry_run {
        request.query(&[("dry_run", "true")])
    } else {
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_parses_with_numeric_ids_and_permanent_window() {
        let grant: Grant = serde_json::from_str(
            r#"{"id":17,"asset_id":"sim-a0","owner_account_id":3,"account_id":"acc9",
                "from":"2025-01-01T00:00:00Z","until":null,"active":true,"change":"created"}"#,
        )
        .expect("grant");
        assert_eq!(grant.id.to_string(), "17");
        assert_eq!(grant.until, None);
        assert_eq!(grant.change, Some(GrantChange::Created));
        assert_eq!(serde_json::to_value(&grant.id).expect("id"), 17);
    }

    #[test]
    fn listed_grant_without_change_and_unknown_change_parse() {
        let listed: Grant = serde_json::from_str(
            r#"{"id":"g1","asset_id":"x","owner_account_id":"o","account_id":"a",
                "from":"2025-01-01T00:00:00Z","active":false}"#,
        )
        .expect("listed grant");
        assert_eq!(listed.change, None);
        let change: GrantChange = serde_json::from_str("\"removed\"").expect("change");
        assert_eq!(change, GrantChange::Unknown);
    }

    #[test]
    fn new_grants_leave_out_the_open_window() {
        let body = NewGrants::permanent(AccountId::new("g"), vec![AssetId::new("a")]);
        assert_eq!(
            serde_json::to_value(&body).expect("encode"),
            serde_json::json!({"account_id": "g", "asset_ids": ["a"]})
        );
    }

    #[test]
    fn dry_run_is_a_query_flag_only_when_asked() {
        let client = ApiClient::new("http://127.0.0.1:9/", "t").expect("client");
        let dry = dry_run_query(
            client.request(Method::POST, &["visibility", "grants"]),
            true,
        )
        .build()
        .expect("request");
        assert_eq!(
            dry.url().as_str(),
            "http://127.0.0.1:9/v1/visibility/grants?dry_run=true"
        );
        let real = dry_run_query(
            client.request(Method::POST, &["visibility", "remove"]),
            false,
        )
        .build()
        .expect("request");
        assert_eq!(real.url().query(), None);
    }

    #[test]
    fn audit_entry_parses_with_optional_ids_absent() {
        let entry: AuditEntry = serde_json::from_str(
            r#"{"seq":4,"at":"2025-01-01T00:00:00Z","actor":"u1","via":null,
                "account_id":"a1","action":"visibility.grant.delete","target":"g1",
                "before":"g1"}"#,
        )
        .expect("audit entry");
        assert_eq!(entry.seq, 4);
        assert_eq!(entry.actor, PrincipalId::new("u1"));
        assert_eq!(entry.via, None);
        assert_eq!(entry.before.as_deref(), Some("g1"));
        assert_eq!(entry.after, None);
    }

    #[test]
    fn grant_and_audit_queries_leave_out_missing_filters() {
        let query = GrantQuery {
            account_id: Some(AccountId::new("g")),
            ..GrantQuery::default()
        };
        assert_eq!(
            serde_json::to_value(&query).expect("encode"),
            serde_json::json!({"account_id": "g"})
        );
        assert_eq!(
            serde_json::to_value(AuditQuery::default()).expect("encode"),
            serde_json::json!({})
        );
    }

    /// A stand-in gateway: answers each of `answers` on its own connection, in order, and
    /// hands back the requests it read (request line, headers and body as text).
    async fn fake_gateway(
        answers: Vec<(u16, String)>,
    ) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            let mut requests = Vec::new();
            for (status, body) in answers {
                let (mut socket, _) = listener.accept().await.expect("accept");
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                loop {
                    let read = socket.read(&mut buffer).await.expect("read");
                    request.extend_from_slice(&buffer[..read]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    if let Some((head, body_so_far)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|line| {
                                let (name, value) = line.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body_so_far.len() >= length || read == 0 {
                            break;
                        }
                    }
                    if read == 0 {
                        break;
                    }
                }
                requests.push(String::from_utf8_lossy(&request).into_owned());
                let content_type = if status >= 400 {
                    "application/problem+json"
                } else {
                    "application/json"
                };
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(answer.as_bytes()).await.expect("write");
                socket.shutdown().await.ok();
            }
            requests
        });
        (base, task)
    }

    const GRANT: &str = r#"{"id":"g1","asset_id":"a0","owner_account_id":"o","account_id":"t",
        "from":"2025-01-01T00:00:00Z","until":null,"active":true,"change":"created"}"#;

    #[tokio::test]
    async fn delete_grant_reports_the_success_status_and_problems() {
        let problem = r#"{"title":"Not Found","status":404,"detail":"grant g2"}"#;
        let (base, server) =
            fake_gateway(vec![(204, String::new()), (404, problem.to_owned())]).await;
        let client = ApiClient::new(&base, "secret").expect("client");
        let status = client.delete_grant(&GrantId::new("g1")).await.expect("204");
        assert_eq!(status, 204);
        let error = client
            .delete_grant(&GrantId::new("g2"))
            .await
            .expect_err("404");
        assert_eq!(
            (error.status(), error.detail()),
            (Some(404), Some("grant g2"))
        );
        let requests = server.await.expect("server");
        assert!(requests[0].starts_with("DELETE /v1/visibility/grants/g1 HTTP/1.1"));
        assert!(requests[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer secret"));
    }

    #[tokio::test]
    async fn dry_run_grant_sends_the_flag_and_reads_the_batch() {
        let body = format!(r#"{{"dry_run":true,"items":[{GRANT}]}}"#);
        let (base, server) = fake_gateway(vec![(200, body)]).await;
        let client = ApiClient::new(&base, "t").expect("client");
        let request = NewGrants::permanent(AccountId::new("t"), vec![AssetId::new("a0")]);
        let batch = client
            .grant_visibility(&request, true)
            .await
            .expect("batch");
        assert!(batch.dry_run);
        assert_eq!(batch.items[0].change, Some(GrantChange::Created));
        let requests = server.await.expect("server");
        assert!(requests[0].starts_with("POST /v1/visibility/grants?dry_run=true HTTP/1.1"));
        assert!(requests[0].ends_with(r#"{"account_id":"t","asset_ids":["a0"]}"#));
    }

    #[tokio::test]
    async fn listings_follow_the_cursor_until_it_runs_out() {
        let first = format!(r#"{{"items":[{GRANT}],"next_cursor":"c2"}}"#);
        let last = r#"{"items":[]}"#.to_owned();
        let (base, server) = fake_gateway(vec![(200, first), (200, last)]).await;
        let client = ApiClient::new(&base, "t").expect("client");
        let query = GrantQuery {
            asset_id: Some(AssetId::new("a0")),
            ..GrantQuery::default()
        };
        let grants = client.list_grants(&query).await.expect("grants");
        assert_eq!(grants.len(), 1);
        let requests = server.await.expect("server");
        assert!(requests[0].starts_with("GET /v1/visibility/grants?asset_id=a0 HTTP/1.1"));
        assert!(requests[1].starts_with("GET /v1/visibility/grants?asset_id=a0&cursor=c2 HTTP/1.1"));
    }
}
