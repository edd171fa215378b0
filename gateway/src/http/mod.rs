//! The HTTP control API (actix-web). Handlers are thin: parse, call one read or one use
//! case ([`actors::usecases::UseCases`], which commits and runs every follow-up), map the
//! result. Rules live in `storage`; ordering with the live path lives in `actors`.

pub mod accounts;
pub mod auth;
pub mod auth_limit;
pub mod body;
pub mod certificates;
pub mod dto;
pub mod fleet;
pub mod keys;
pub mod last_used;
pub mod operators;
pub mod problem;
pub mod sharing;
pub mod stream;
pub mod support;
pub mod tenant;
pub mod users;

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use actors::directory::Directory;
use actors::metrics::Metrics;
use storage::time::Clock;
use storage::Store;
use utoipa::OpenApi;

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
    /// Caps on open SSE streams.
    pub streams: Arc<stream::StreamCaps>,
    /// When each principal's token was last used (noted per request, flushed to the store).
    pub last_used: Arc<last_used::LastUsed>,
    /// Failed authentications per source address.
    pub auth_failures: Arc<auth_limit::FailureLimiter>,
    /// Peers whose `X-Forwarded-For` names the source (`--trusted-proxy`).
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Fleetgate control API", version = "1"),
    paths(
        accounts::me,
        accounts::create_account,
        accounts::get_account,
        accounts::create_user,
        users::list_users,
        users::patch_user,
        users::delete_user,
        users::rotate_token,
        accounts::create_staff,
        accounts::integration_cert,
        certificates::list_certificates,
        certificates::revoke_certificate,
        certificates::revoke_issued_before,
        fleet::register_device,
        fleet::device_status,
        fleet::deregister_device,
        fleet::create_asset,
        fleet::list_assets,
        fleet::get_asset,
        fleet::patch_asset,
        fleet::history,
        fleet::latest,
        stream::account_stream,
        sharing::create_partnership,
        sharing::end_partnership,
        sharing::list_partnerships,
        sharing::create_grants,
        sharing::remove_grants,
        sharing::delete_grant,
        sharing::list_grants,
        sharing::audit,
        sharing::children,
        support::create_request,
        support::approve,
        support::decline,
        support::revoke,
        support::list,
        support::open_case,
        support::close_case,
        tenant::create_profile,
        tenant::update_profile,
        tenant::list_profiles,
        tenant::share_telemetry,
        tenant::share_details,
        tenant::unshare_telemetry,
        tenant::unshare_details,
        tenant::sharing,
        keys::create,
        keys::list,
        keys::patch,
        keys::delete,
        keys::bulk_edit,
        keys::bulk_delete,
        keys::access_events,
        operators::create,
        operators::list,
        operators::show,
        operators::patch,
        operators::delete,
        operators::import,
        operators::template_csv,
        operators::template_xlsx,
        stream::asset_stream,
        healthz,
        metrics,
    ),
    components(schemas(problem::Problem)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_JSON_BODY)
            .error_handler(problem::json_error),
    )
    .app_data(web::QueryConfig::default().error_handler(problem::query_error))
    .route("/healthz", web::get().to(healthz))
    .route("/metrics", web::get().to(metrics))
    .service(
        web::scope("/v1")
            .route("/openapi.json", web::get().to(openapi))
            .route("/me", web::get().to(accounts::me))
            .route("/accounts", web::post().to(accounts::create_account))
            .route("/accounts/{a}", web::get().to(accounts::get_account))
            .route("/accounts/{a}/users", web::post().to(accounts::create_user))
            .route("/accounts/{a}/users", web::get().to(users::list_users))
            .route(
                "/accounts/{a}/certificates",
                web::get().to(certificates::list_certificates),
            )
            .route(
                "/accounts/{a}/certificates/revoke-issued-before",
                web::post().to(certificates::revoke_issued_before),
            )
            .route(
                "/accounts/{a}/certificates/{serial}/revoke",
                web::post().to(certificates::revoke_certificate),
            )
            .route(
                "/accounts/{a}/users/{u}",
                web::patch().to(users::patch_user),
            )
            .route(
                "/accounts/{a}/users/{u}",
                web::delete().to(users::delete_user),
            )
            .route(
                "/accounts/{a}/users/{u}/token",
                web::post().to(users::rotate_token),
            )
            .route(
                "/accounts/{a}/integration-certs",
                web::post().to(accounts::integration_cert),
            )
            .route("/accounts/{a}/children", web::get().to(sharing::children))
            .route("/partnerships", web::post().to(sharing::create_partnership))
            .route("/partnerships", web::get().to(sharing::list_partnerships))
            .route(
                "/partnerships/{id}",
                web::delete().to(sharing::end_partnership),
            )
            .route("/visibility/grants", web::post().to(sharing::create_grants))
            .route("/visibility/grants", web::get().to(sharing::list_grants))
            .route(
                "/visibility/grants/{id}",
                web::delete().to(sharing::delete_grant),
            )
            .route("/visibility/remove", web::post().to(sharing::remove_grants))
            .route("/audit", web::get().to(sharing::audit))
            .route(
                "/support-access/requests",
                web::post().to(support::create_request),
            )
            .route(
                "/support-access/requests/{id}/approve",
                web::post().to(support::approve),
            )
            .route(
                "/support-access/requests/{id}/decline",
                web::post().to(support::decline),
            )
            .route(
                "/support-access/requests/{id}/revoke",
                web::post().to(support::revoke),
            )
            .route("/accounts/{a}/support-access", web::get().to(support::list))
            .route("/support-cases", web::post().to(support::open_case))
            .route(
                "/support-cases/{id}/close",
                web::post().to(support::close_case),
            )
            .route("/operators", web::post().to(operators::create))
            .route("/operators", web::get().to(operators::list))
            .route(
                "/operators/template.csv",
                web::get().to(operators::template_csv),
            )
            .route(
                "/operators/template.xlsx",
                web::get().to(operators::template_xlsx),
            )
            .route("/operators/import", web::post().to(operators::import))
            .route("/operators/{id}", web::get().to(operators::show))
            .route("/operators/{id}", web::patch().to(operators::patch))
            .route("/operators/{id}", web::delete().to(operators::delete))
            .route("/keys", web::post().to(keys::create))
            .route("/keys", web::get().to(keys::list))
            .route("/keys/bulk-edit", web::post().to(keys::bulk_edit))
            .route("/keys/bulk-delete", web::post().to(keys::bulk_delete))
            .route("/keys/{id}", web::patch().to(keys::patch))
            .route("/keys/{id}", web::delete().to(keys::delete))
            .route(
                "/assets/{x}/access-events",
                web::get().to(keys::access_events),
            )
            .route("/sharing-profiles", web::post().to(tenant::create_profile))
            .route("/sharing-profiles", web::get().to(tenant::list_profiles))
            .route(
                "/sharing-profiles/{id}",
                web::patch().to(tenant::update_profile),
            )
            .route("/assets/{x}/sharing", web::get().to(tenant::sharing))
            .route(
                "/assets/{x}/sharing/telemetry",
                web::put().to(tenant::share_telemetry),
            )
            .route(
                "/assets/{x}/sharing/telemetry",
                web::delete().to(tenant::unshare_telemetry),
            )
            .route(
                "/assets/{x}/sharing/details",
                web::put().to(tenant::share_details),
            )
            .route(
                "/assets/{x}/sharing/details",
                web::delete().to(tenant::unshare_details),
            )
            .route("/staff", web::post().to(accounts::create_staff))
            .route("/devices", web::post().to(fleet::register_device))
            .route("/devices/{d}", web::delete().to(fleet::deregister_device))
            .route("/devices/{d}/status", web::get().to(fleet::device_status))
            .route("/assets", web::post().to(fleet::create_asset))
            .route("/assets", web::get().to(fleet::list_assets))
            .route("/assets/{x}", web::get().to(fleet::get_asset))
            .route("/assets/{x}", web::patch().to(fleet::patch_asset))
            .route("/assets/{x}/telemetry", web::get().to(fleet::history))
            .route("/assets/{x}/latest", web::get().to(fleet::latest))
            .route("/assets/{x}/stream", web::get().to(stream::asset_stream))
            .route("/stream", web::get().to(stream::account_stream)),
    )
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

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
