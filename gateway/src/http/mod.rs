//! The HTTP control API (actix-web). Handlers are thin: parse, call one domain operation
//! (a read, or a write through the store writer followed by the actor update), map the
//! result. Rules live in `storage`; ordering with the live path lives in `actors`. Every
//! route is declared once, in [`routes`].

pub mod accounts;
pub mod auth;
pub mod auth_limit;
pub mod body;
pub mod certificates;
pub mod dto;
pub mod fleet;
pub mod keys;
pub mod operators;
pub mod problem;
pub mod routes;
pub mod sharing;
pub mod stream;
pub mod support;
pub mod tenant;
pub mod users;

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use actors::directory::Directory;
use actors::metrics::Metrics;
use actors::writer::WriterHandle;
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
    pub writer: WriterHandle,
    pub directory: Arc<Directory>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub ca: Arc<crate::pki::CertificateAuthority>,
    pub scheduler: actors::scheduler::SchedulerHandle,
    pub device_cert_validity: std::time::Duration,
    pub key_ack_wait: std::time::Duration,
    /// Wakes the SMS outbox drainer after an invitation is committed.
    pub outbox: crate::outbox::OutboxWaker,
    /// Live MQTT sessions: closed before a deregistration or revocation answers.
    pub transport: crate::transport::TransportHandle,
    pub transport_metrics: Arc<crate::transport::metrics::TransportMetrics>,
    /// Caps on open SSE streams.
    pub streams: Arc<stream::StreamCaps>,
    /// Failed authentications per source address.
    pub auth_failures: Arc<auth_limit::FailureLimiter>,
    /// Peers whose `X-Forwarded-For` names the source (`--trusted-proxy`).
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
}

/// [`actors::completing`] for a handler's change, whose errors are [`problem::ApiError`]:
/// its commit and follow-ups run where a hung-up client cannot cancel them.
pub(crate) async fn completing<T: 'static>(
    work: impl std::future::Future<Output = Result<T, problem::ApiError>> + 'static,
) -> Result<T, problem::ApiError> {
    actors::completing(work).await
}

/// The API: body and query error handling, every route of [`routes`], and 404 for the rest.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_JSON_BODY)
            .error_handler(problem::json_error),
    )
    .app_data(web::QueryConfig::default().error_handler(problem::query_error))
    .configure(routes::register)
    .default_service(web::to(not_found));
}

async fn not_found() -> Result<HttpResponse, problem::ApiError> {
    Err(storage::OpError::not_found("resource").into())
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "the gateway is serving")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text exposition")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(format!(
            "{}{}# EOF\n",
            state.metrics.render().trim_end_matches("# EOF\n"),
            state.transport_metrics.render()
        ))
}

#[utoipa::path(get, path = "/v1/openapi.json", responses((status = 200, description = "this OpenAPI document")))]
async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
