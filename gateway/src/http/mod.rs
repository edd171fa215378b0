//! The HTTP control API (actix-web). Handlers are thin: parse, call one read or one use
//! case ([`actors::usecases::UseCases`], which commits and runs every follow-up), map the
//! result. Rules live in `storage`; ordering with the live path lives in `actors`. Every
//! route is declared once, in [`routes`].

pub mod accounts;
pub mod auth;
pub mod auth_limit;
pub mod binding;
pub mod body;
pub mod body_deadline;
pub mod certificates;
pub mod console;
pub mod customers;
pub mod dto;
pub mod export;
pub mod fields;
pub mod fleet;
pub mod keys;
pub mod last_used;
pub mod link;
pub mod metrics_token;
pub mod observe;
pub mod openapi;
pub mod operators;
pub mod problem;
pub mod query;
pub mod resume;
pub mod retention;
pub mod routes;
pub mod session;
pub mod settings;
pub mod sharing;
pub mod staff;
pub mod stream;
pub mod support;
pub mod tenant;
pub mod users;

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use actors::directory::Directory;
use actors::metrics::Metrics;
use storage::time::Clock;
use storage::Store;
use utoipa::OpenApi;

pub use routes::{ApiDoc, ROUTES};

/// Request bodies larger than this are refused with 413 before they are parsed.
pub const MAX_JSON_BODY: usize = 256 * 1024;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    /// Every mutation: its transaction and its follow-ups.
    pub usecases: actors::usecases::UseCases,
    pub directory: Arc<Directory>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub ca: Arc<crate::pki::CertificateAuthority>,
    pub device_cert_validity: std::time::Duration,
    /// Live MQTT sessions: closed before a deregistration or revocation answers.
    pub transport: crate::transport::TransportHandle,
    pub transport_metrics: Arc<crate::transport::metrics::TransportMetrics>,
    /// HTTP requests, the SMS outbox and the process.
    pub gateway_metrics: Arc<crate::metrics::GatewayMetrics>,
    /// `--metrics-token-file`: `/metrics` answers only this bearer token; `None`, anyone.
    pub metrics_token: Option<Arc<metrics_token::MetricsToken>>,
    /// Caps on open SSE streams.
    pub streams: Arc<stream::StreamCaps>,
    /// The arrival order: how far ids were handed out (a resume from beyond is refused).
    pub arrivals: Arc<actors::arrival::Arrivals>,
    /// When each principal's token was last used (noted per request, flushed to the store).
    pub last_used: Arc<last_used::LastUsed>,
    /// Failed authentications per source address.
    pub auth_failures: Arc<auth_limit::FailureLimiter>,
    /// Peers whose `X-Forwarded-For` names the source (`--trusted-proxy`).
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
    /// `--map-tile-url`, for the console (`GET /v1/settings`).
    pub map_tile_url: Option<Arc<str>>,
}

/// The API: body error handling (a query string is read by [`query::Query`]), every route of [`routes`], the web console's
/// files ([`console`]), and 404 for the rest.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_JSON_BODY)
            .error_handler(problem::json_error),
    )
    .configure(routes::register)
    .configure(console::register)
    .default_service(web::to(not_found));
}

async fn not_found() -> Result<HttpResponse, problem::ApiError> {
    Err(storage::OpError::not_found("resource").into())
}

/// 200 `{"status":"ok"}`; 503 naming the component that cannot serve while the store is
/// being reopened after a disk failure (`since_ms`: its first failure, ms since the epoch).
#[utoipa::path(get, path = "/healthz", responses(
    (status = 200, description = "the gateway is serving"),
    (status = 503, description = "`{status: \"unavailable\", component: \"store\", detail, since_ms}`: the store cannot write and is being reopened")
))]
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.health() {
        storage::store::Health::Ok => HttpResponse::Ok().json(serde_json::json!({"status": "ok"})),
        storage::store::Health::Unavailable { detail, since } => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({
                "status": "unavailable",
                "component": "store",
                "detail": detail,
                "since_ms": since.millis(),
            })),
    }
}

/// The OpenMetrics content type prometheus-client's text encoding is (`# EOF`, `_total`).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric, as OpenMetrics text. Open to anyone unless the gateway runs with
/// `--metrics-token-file`; then only that bearer token is answered (401 otherwise).
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "OpenMetrics text exposition"),
    (status = 401, description = "the gateway runs with `--metrics-token-file` and the request did not carry that bearer token"),
    (status = 429, description = "the source failed to authenticate too often")
))]
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, problem::ApiError> {
    metrics_token::authorize(&req, &state)?;
    let page = crate::metrics::page(
        &state.metrics,
        &state.transport_metrics,
        &state.gateway_metrics,
    );
    Ok(HttpResponse::Ok().content_type(OPENMETRICS).body(page))
}

#[utoipa::path(get, path = "/v1/openapi.json", responses((status = 200, description = "this OpenAPI document")))]
async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
