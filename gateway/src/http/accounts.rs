//! Principals and accounts: `/me`, accounts, users, creating staff (the staff list and a
//! member's disable, delete and token: [`super::staff`]).

use actix_web::{web, HttpResponse};
use storage::model::{CertificateKind, Role, StaffRole};
use storage::{AccountId, OpError};

use super::auth::Caller;
use super::body::Json;
use super::dto::*;
use super::problem::{ApiError, Problem};
use super::AppState;

#[utoipa::path(get, path = "/v1/me", responses((status = 200, body = MeView), (status = 401, body = Problem)))]
pub async fn me(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(MeView::from(&caller.0))
}

#[utoipa::path(post, path = "/v1/accounts", request_body = NewAccount,
    responses((status = 201, body = AccountView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_account(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<NewAccount>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let parent = body
        .parent_id
        .as_deref()
        .map(|raw| id_field("parent_id", AccountId::parse(raw)))
        .transpose()?;
    let account = state
        .usecases
        .create_account(caller.0, body.name, parent)
        .await?;
    Ok(HttpResponse::Created().json(AccountView::from(account)))
}

/// `GET /v1/accounts`: the search and paging.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AccountListQuery {
    /// Part of the account's name or id, any case.
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

/// The accounts the caller may read: every account for staff (the console's account
/// picker, instead of typing an id), a user's own account and its descendants.
#[utoipa::path(get, path = "/v1/accounts", params(AccountListQuery),
    responses((status = 200, description = "`{items: [AccountView], next_cursor?}`"), (status = 422, body = Problem)))]
pub async fn list_accounts(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<AccountListQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = query.q.as_deref().filter(|q| !q.is_empty());
    let accounts = storage::read::visible_accounts(&state.store.begin_read()?, &caller.0, q)?;
    let paging = (query.cursor.as_deref(), query.limit.as_deref());
    let page = page_by("accounts", accounts, paging, |account| {
        account.id.to_string()
    })?;
    Ok(list_answer(&request, page, AccountView::from))
}

#[utoipa::path(get, path = "/v1/accounts/{a}", responses((status = 200, body = AccountView), (status = 404, body = Problem)))]
pub async fn get_account(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let what = format!("account {path}");
    let id = AccountId::parse(&path).map_err(|_| OpError::not_found(&what))?;
    let account = storage::read::visible_account(&state.store.begin_read()?, &caller.0, &id)?;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}

#[utoipa::path(post, path = "/v1/accounts/{a}/users", request_body = NewPrincipal,
    responses((status = 201, body = PrincipalCreated), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<NewPrincipal>,
) -> Result<HttpResponse, ApiError> {
    let account =
        AccountId::parse(&path).map_err(|_| OpError::not_found(format!("account {path}")))?;
    let body = body.into_inner();
    let role = Role::parse(&body.role)
        .ok_or_else(|| OpError::invalid("role", format!("must be one of {}", Role::NAMES)))?;
    let (user, token) = state
        .usecases
        .create_user(caller.0, account, body.name, role)
        .await?;
    Ok(HttpResponse::Created().json(PrincipalCreated::new(&user, token)))
}

#[utoipa::path(post, path = "/v1/staff", request_body = NewPrincipal,
    responses((status = 201, body = PrincipalCreated), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_staff(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<NewPrincipal>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let role = StaffRole::parse(&body.role)
        .ok_or_else(|| OpError::invalid("role", format!("must be one of {}", StaffRole::NAMES)))?;
    let (staff, token) = state
        .usecases
        .create_staff(caller.0, body.name, role)
        .await?;
    Ok(HttpResponse::Created().json(PrincipalCreated::new(&staff, token)))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationCertRequest {
    /// A PEM CSR; when given the integration keeps its private key.
    pub csr_pem: Option<String>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct IntegrationCert {
    pub account_id: String,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: Option<String>,
}

/// A client certificate whose Organization is the account id: over TLS the broker confines
/// it to `/tenants/{a}/`, where the account's integration topics are
/// (`/tenants/{a}/assets/{x}/telemetry`). Without it integrations could only use the
/// plain development listener.
#[utoipa::path(post, path = "/v1/accounts/{a}/integration-certs", request_body = IntegrationCertRequest,
    responses((status = 201, body = IntegrationCert), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn integration_cert(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<IntegrationCertRequest>,
) -> Result<HttpResponse, ApiError> {
    let account =
        AccountId::parse(&path).map_err(|_| OpError::not_found(format!("account {path}")))?;
    let issued = match &body.csr_pem {
        Some(csr) => state
            .ca
            .sign_device_csr(account.as_str(), csr, state.device_cert_validity)?,
        None => state
            .ca
            .issue_device(account.as_str(), state.device_cert_validity)
            .map_err(|err| ApiError::Internal(err.to_string()))?,
    };
    let record = issued.record(
        account.as_str(),
        CertificateKind::Integration,
        state.clock.now(),
    );
    state
        .usecases
        .record_integration_cert(caller.0, account.clone(), record)
        .await?;
    Ok(HttpResponse::Created().json(IntegrationCert {
        account_id: account.to_string(),
        ca_pem: state.ca.ca_pem().to_owned(),
        cert_pem: issued.cert_pem,
        key_pem: issued.key_pem,
    }))
}
