//! A typed client for the gateway's HTTP control API, written against the documented
//! contract only (DESIGN.md section 5), the way a third-party integration would.
//!
//! Every error answer is a problem+json document; it becomes `ApiError::Status` so callers
//! (and the end-to-end tests) can match on the HTTP status and read the `detail`. The `*_raw`
//! methods skip all typing, for tests that check malformed requests or exact error bodies.

mod keys;
mod operators;
mod sharing;
mod sse;
mod support;
mod types;

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, Url};
use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

pub use keys::{
    AccessEvent, AccessResult, AccessType, DenyReason, Distribution, KeyBatch, KeyChange, KeyEdit,
    KeyId, KeyQuery, KeyRemoval, KeyView, NewKey,
};
pub use operators::{NewOperator, Operator, OperatorId};
pub use sharing::{
    AuditEntry, AuditQuery, EndedPartnership, Grant, GrantBatch, GrantChange, GrantId, GrantQuery,
    GrantRemoval, NewGrants, Partnership, PartnershipId,
};
pub use sse::{RawSseEvent, SseEvent, SseParser, SseStream};
pub use support::{
    CreatedStaff, StaffRole, SupportAccessId, SupportDecision, SupportDuration, SupportList,
    SupportState, SupportView,
};
pub use types::{
    Account, AccountId, Asset, AssetId, AssetRelation, Capabilities, CreatedUser, Device, DeviceId,
    DeviceStatus, HistoryQuery, Me, NewAsset, NewDevice, Page, Point, PrincipalId, PrincipalKind,
    Problem, UserRole,
};

/// How long one ordinary request may take; streams have no such limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a pooled connection may sit idle: shorter than the gateway's 5 s keep-alive.
const IDLE_CONNECTION: Duration = Duration::from_secs(4);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most pages `telemetry_all` and the other every-page listings read before giving up,
/// so a gateway whose cursor never ends cannot keep a test running forever (1000 pages of up
/// to 1000 items).
const MAX_HISTORY_PAGES: usize = 1000;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The gateway answered with a non-success status; `problem` is its problem+json body
    /// (or a best-effort stand-in when the body was not one).
    #[error("HTTP {status}: {}", problem.detail)]
    Status { status: u16, problem: Problem },
    #[error("HTTP transport: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("cannot decode {what}: {source}; body: {body}")]
    Decode {
        what: &'static str,
        source: serde_json::Error,
        body: String,
    },
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("history of asset {asset_id} did not end after {pages} pages")]
    EndlessHistory { asset_id: String, pages: usize },
}

impl ApiError {
    /// The HTTP status, when the gateway answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The problem document's `detail`, when the gateway answered with one.
    pub fn detail(&self) -> Option<&str> {
        match self {
            ApiError::Status { problem, .. } => Some(&problem.detail),
            _ => None,
        }
    }

    fn from_error_body(status: u16, body: &[u8]) -> Self {
        let problem = serde_json::from_slice::<Problem>(body).unwrap_or_else(|_| Problem {
            status: Some(status),
            detail: truncate_body(body),
            ..Problem::default()
        });
        ApiError::Status { status, problem }
    }
}

/// An answer the client did not interpret: for tests that check exact statuses and bodies.
#[derive(Debug, Clone, PartialEq)]
pub struct RawResponse {
    pub status: u16,
    pub content_type: Option<String>,
    /// The body as JSON; `Null` when empty, a JSON string when it was not JSON.
    pub body: Value,
}

impl fmt::Debug for ApiClient {
    /// Leaves the token out: credentials have no place in test output.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ApiClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// A client bound to one gateway and one bearer token. Cloning is cheap and shares the
/// connection pool.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    /// `None` sends no `Authorization` header, for tests of the 401 path.
    token: Option<String>,
}

impl ApiClient {
    /// `base_url` is the gateway root, e.g. `http://127.0.0.1:8080`.
    pub fn new(base_url: &str, token: impl Into<String>) -> Result<Self, ApiError> {
        let mut client = Self::anonymous(base_url)?;
        client.token = Some(token.into());
        Ok(client)
    }

    /// A client that sends no credentials.
    pub fn anonymous(base_url: &str) -> Result<Self, ApiError> {
        let base = Url::parse(base_url).map_err(|error| ApiError::InvalidUrl {
            url: base_url.to_owned(),
            reason: error.to_string(),
        })?;
        if base.cannot_be_a_base() {
            return Err(ApiError::InvalidUrl {
                url: base_url.to_owned(),
                reason: "not a base URL".to_owned(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // The gateway (actix's default) closes a keep-alive connection idle for 5 s; a
            // pooled one reused just as it does fails the request (IncompleteMessage). Drop
            // idle ones first.
            .pool_idle_timeout(IDLE_CONNECTION)
            .build()?;
        Ok(Self {
            http,
            base,
            token: None,
        })
    }

    /// The same gateway and connection pool, acting as another principal.
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// The same principal against another address of the gateway (after a restart on new
    /// ports).
    pub fn rebase(&self, base_url: &str) -> Self {
        let mut client = Self::anonymous(base_url).unwrap_or_else(|_| self.clone());
        client.token = self.token.clone();
        client
    }

    /// `GET` of a non-JSON resource such as `/metrics`: status and body text.
    pub async fn get_text(&self, path: &str) -> Result<(u16, String), ApiError> {
        let url = self.join(path)?;
        let response = self
            .authorize(self.http.get(url))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }

    /// The bearer token this client sends, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `GET /v1/me`.
    pub async fn me(&self) -> Result<Me, ApiError> {
        self.fetch(Method::GET, &["me"], "me").await
    }

    /// `POST /v1/accounts`.
    pub async fn create_account(
        &self,
        name: &str,
        parent_id: Option<&AccountId>,
    ) -> Result<Account, ApiError> {
        #[derive(Serialize)]
        struct Body<'a> {
            name: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            parent_id: Option<&'a AccountId>,
        }
        let body = Body { name, parent_id };
        self.send(Method::POST, &["accounts"], Some(&body), "account")
            .await
    }

    /// `POST /v1/accounts/{a}/users`; the answer carries the user's token (shown once).
    pub async fn create_user(
        &self,
        account_id: &AccountId,
        name: &str,
        role: UserRole,
    ) -> Result<CreatedUser, ApiError> {
        #[derive(Serialize)]
        struct Body<'a> {
            name: &'a str,
            role: UserRole,
        }
        let account = account_id.to_string();
        let body = Body { name, role };
        self.send(
            Method::POST,
            &["accounts", &account, "users"],
            Some(&body),
            "user",
        )
        .await
    }

    /// `POST /v1/devices`.
    pub async fn create_device(&self, device: &NewDevice) -> Result<Device, ApiError> {
        self.send(Method::POST, &["devices"], Some(device), "device")
            .await
    }

    /// `POST /v1/assets`.
    pub async fn create_asset(&self, asset: &NewAsset) -> Result<Asset, ApiError> {
        self.send(Method::POST, &["assets"], Some(asset), "asset")
            .await
    }

    /// `GET /v1/assets`, one page.
    pub async fn list_assets(&self, cursor: Option<&str>) -> Result<Page<Asset>, ApiError> {
        let mut request = self.request(Method::GET, &["assets"]);
        if let Some(cursor) = cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        self.execute(request, "asset page").await
    }

    /// `GET /v1/assets`, every page.
    pub async fn list_all_assets(&self) -> Result<Vec<Asset>, ApiError> {
        self.all_pages(&["assets"], &NoQuery, "asset page").await
    }

    /// `GET /v1/assets/{x}/telemetry`, one page.
    pub async fn telemetry_page(
        &self,
        asset_id: &AssetId,
        query: &HistoryQuery,
    ) -> Result<Page<Point>, ApiError> {
        let request = self
            .request(Method::GET, &["assets", asset_id.as_str(), "telemetry"])
            .query(query);
        self.execute(request, "telemetry page").await
    }

    /// Every point of an asset in `[from, to]` (as the gateway reads those bounds), following
    /// `next_cursor` until it runs out. `query.cursor` is the starting cursor.
    pub async fn telemetry_all(
        &self,
        asset_id: &AssetId,
        query: &HistoryQuery,
    ) -> Result<Vec<Point>, ApiError> {
        let mut query = query.clone();
        let mut points = Vec::new();
        for _ in 0..MAX_HISTORY_PAGES {
            let page = self.telemetry_page(asset_id, &query).await?;
            points.extend(page.items);
            match page.next_cursor {
                // A cursor that does not move would loop forever; treat it as the end and let
                // the caller's counting notice anything missing.
                Some(next) if query.cursor.as_deref() != Some(next.as_str()) => {
                    query.cursor = Some(next)
                }
                _ => return Ok(points),
            }
        }
        Err(ApiError::EndlessHistory {
            asset_id: asset_id.to_string(),
            pages: MAX_HISTORY_PAGES,
        })
    }

    /// `GET /v1/assets/{x}/latest`; a 404 means the asset has no point yet (or is not
    /// visible: the API does not tell those apart).
    pub async fn latest(&self, asset_id: &AssetId) -> Result<Point, ApiError> {
        self.fetch(
            Method::GET,
            &["assets", asset_id.as_str(), "latest"],
            "point",
        )
        .await
    }

    /// `GET /v1/devices/{d}/status`.
    pub async fn device_status(&self, device_id: &DeviceId) -> Result<DeviceStatus, ApiError> {
        self.fetch(
            Method::GET,
            &["devices", device_id.as_str(), "status"],
            "device status",
        )
        .await
    }

    /// Opens a live stream, e.g. `/v1/stream` or `/v1/assets/{x}/stream`. Returns once the
    /// gateway has answered with a success status, so the subscription is in place.
    pub async fn stream(&self, path: &str) -> Result<SseStream, ApiError> {
        self.stream_resuming(path, None).await
    }

    /// Opens a live stream like [`ApiClient::stream`], resuming after `last_event_id` (sent
    /// as the `Last-Event-ID` header, as an `EventSource` does when it reconnects).
    pub async fn stream_resuming(
        &self,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Result<SseStream, ApiError> {
        let url = self.join(path)?;
        let mut request = self
            .authorize(self.http.get(url))
            .header(ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.bytes().await?;
            return Err(ApiError::from_error_body(status.as_u16(), &body));
        }
        Ok(SseStream::new(Box::pin(response.bytes_stream())))
    }

    /// `GET` any path (starting with `/`), without interpreting the answer.
    pub async fn get_raw(&self, path: &str) -> Result<(u16, Value), ApiError> {
        let response = self.request_raw(Method::GET, path, None).await?;
        Ok((response.status, response.body))
    }

    /// Any method and path (starting with `/`), optional JSON body, uninterpreted answer.
    pub async fn request_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<RawResponse, ApiError> {
        let url = self.join(path)?;
        let mut request = self
            .authorize(self.http.request(method, url))
            .timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(RawResponse {
            status,
            content_type,
            body,
        })
    }

    /// A request to `/v1/{segments...}`; each segment is percent-encoded, so ids with odd
    /// characters reach the gateway intact instead of changing the path.
    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v1").extend(segments);
        }
        self.authorize(self.http.request(method, url))
            .timeout(REQUEST_TIMEOUT)
    }

    fn join(&self, path: &str) -> Result<Url, ApiError> {
        self.base.join(path).map_err(|error| ApiError::InvalidUrl {
            url: path.to_owned(),
            reason: error.to_string(),
        })
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn fetch<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        what: &'static str,
    ) -> Result<T, ApiError> {
        self.execute(self.request(method, segments), what).await
    }

    async fn send<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
        what: &'static str,
    ) -> Result<T, ApiError> {
        let mut request = self.request(method, segments);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.execute(request, what).await
    }

    /// Every item of a list endpoint, following `next_cursor`. A cursor that does not move
    /// ends the listing (as in `telemetry_all`), and so does the page limit: listings are
    /// for checks, which then see what is missing instead of hanging.
    async fn all_pages<Q: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &Q,
        what: &'static str,
    ) -> Result<Vec<T>, ApiError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_HISTORY_PAGES {
            let request = self.page_request(segments, query, cursor.as_deref());
            let page: Page<T> = self.execute(request, what).await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
                _ => break,
            }
        }
        Ok(items)
    }

    fn page_request<Q: Serialize + ?Sized>(
        &self,
        segments: &[&str],
        query: &Q,
        cursor: Option<&str>,
    ) -> RequestBuilder {
        let request = self.request(Method::GET, segments).query(query);
        match cursor {
            Some(cursor) => request.query(&[("cursor", cursor)]),
            None => request,
        }
    }

    /// For answers without a body (`204`): the success status, or the problem.
    async fn execute_status(&self, request: RequestBuilder) -> Result<u16, ApiError> {
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.bytes().await?;
            return Err(ApiError::from_error_body(status.as_u16(), &body));
        }
        Ok(status.as_u16())
    }

    async fn execute<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        what: &'static str,
    ) -> Result<T, ApiError> {
        let response = request.send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            return Err(ApiError::from_error_body(status.as_u16(), &body));
        }
        serde_json::from_slice(&body).map_err(|source| ApiError::Decode {
            what,
            source,
            body: truncate_body(&body),
        })
    }
}

/// The query of a listing that takes no filters.
#[derive(Serialize)]
struct NoQuery;

/// Error messages quote bodies; a whole history page would drown the message.
fn truncate_body(body: &[u8]) -> String {
    const LIMIT: usize = 512;
    let text = String::from_utf8_lossy(body);
    if text.len() <= LIMIT {
        return text.into_owned();
    }
    let mut end = LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_body_becomes_status_error() {
        let body =
            br#"{"type":"about:blank","title":"Not Found","status":404,"detail":"no asset x"}"#;
        let error = ApiError::from_error_body(404, body);
        assert_eq!(error.status(), Some(404));
        assert_eq!(error.detail(), Some("no asset x"));
    }

    #[test]
    fn non_json_error_body_is_kept_as_detail() {
        let error = ApiError::from_error_body(502, b"bad gateway");
        assert_eq!(error.status(), Some(502));
        assert_eq!(error.detail(), Some("bad gateway"));
    }

    #[test]
    fn paths_are_built_under_v1_and_encoded() {
        let client = ApiClient::new("http://127.0.0.1:9/", "t").expect("client");
        let request = client
            .request(Method::GET, &["assets", "a/b", "latest"])
            .build()
            .expect("request");
        assert_eq!(
            request.url().as_str(),
            "http://127.0.0.1:9/v1/assets/a%2Fb/latest"
        );
        let header = request.headers().get("authorization").expect("auth header");
        assert_eq!(header, "Bearer t");
    }

    #[test]
    fn page_requests_carry_filters_and_cursor() {
        let client = ApiClient::new("http://127.0.0.1:9/", "t").expect("client");
        let first = client
            .page_request(&["assets"], &NoQuery, None)
            .build()
            .expect("request");
        assert_eq!(first.url().as_str(), "http://127.0.0.1:9/v1/assets");
        let next = client
            .page_request(
                &["visibility", "grants"],
                &GrantQuery {
                    account_id: Some(AccountId::new("g1")),
                    ..GrantQuery::default()
                },
                Some("c2"),
            )
            .build()
            .expect("request");
        assert_eq!(next.url().query(), Some("account_id=g1&cursor=c2"));
    }

    #[test]
    fn long_bodies_are_truncated_on_a_char_boundary() {
        let body = "é".repeat(600);
        let text = truncate_body(body.as_bytes());
        assert!(text.ends_with("(1200 bytes)"));
    }
}
