//! Support access (rule 4): requests, the account admin's decisions, support cases, and
//! the three lists. Handlers stay thin; the state machine is `storage::support`.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use storage::support::{Decision, SupportAccess, SupportDuration};
use storage::{AccountId, OpError};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::Json;
use super::dto::{id_field, list_answer, page_by};
use super::problem::{ApiError, Problem};
use super::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub account_id: String,
    pub purpose: String,
    /// `24h`, `14d` or `3mo`.
    #[schema(schema_with = super::openapi::support_duration)]
    pub duration: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    pub account_id: String,
    pub ticket_id: String,
    /// The tech_support staff member the case's access is for: required when a
    /// platform_admin opens the case, absent (or the opener) when tech_support does.
    #[serde(default)]
    pub staff_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SupportView {
    pub id: String,
    pub account_id: String,
    pub staff_id: String,
    /// The staff member's name (in lists, for the console's "who").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_name: Option<String>,
    #[schema(schema_with = super::openapi::staff_role)]
    pub staff_role: &'static str,
    pub purpose: String,
    pub duration: Option<&'static str>,
    pub ticket_id: Option<String>,
    /// `pending`, `active`, `declined`, `revoked`, `expired` or `closed`.
    #[schema(schema_with = super::openapi::support_state)]
    pub state: &'static str,
    pub requested_at: String,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub ended_by: Option<String>,
    pub ended_at: Option<String>,
    /// In a list: approved at an ancestor (`account_id`), which is where it is decided.
    pub inherited: bool,
}

impl From<SupportAccess> for SupportView {
    fn from(access: SupportAccess) -> Self {
        let time = |t: Option<storage::time::Timestamp>| t.map(|t| t.to_rfc3339());
        SupportView {
            id: access.id,
            account_id: access.account_id.to_string(),
            staff_id: access.staff.to_string(),
            staff_name: None,
            staff_role: access.staff_role.as_str(),
            purpose: access.purpose,
            duration: access.duration.map(SupportDuration::as_str),
            ticket_id: access.ticket_id,
            state: access.state.as_str(),
            requested_at: access.requested_at.to_rfc3339(),
            starts_at: time(access.starts_at),
            ends_at: time(access.ends_at),
            decided_by: access.decided_by.map(|id| id.to_string()),
            decided_at: time(access.decided_at),
            ended_by: access.ended_by.map(|id| id.to_string()),
            ended_at: time(access.ended_at),
            inherited: false,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StateQuery {
    /// `pending`, `active` or `archived`; every state when absent.
    pub state: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

#[utoipa::path(post, path = "/v1/support-access/requests", request_body = NewRequest,
    responses((status = 201, body = SupportView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_request(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<NewRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let account = id_field("account_id", AccountId::parse(&body.account_id))?;
    let duration = SupportDuration::parse(&body.duration).ok_or_else(|| {
        OpError::invalid(
            "duration",
            format!("must be one of {}", SupportDuration::NAMES),
        )
    })?;
    let access = state
        .usecases
        .request_support(caller.0, account, body.purpose, duration)
        .await?;
    Ok(HttpResponse::Created().json(SupportView::from(access)))
}

async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    id: String,
    decision: Decision,
) -> Result<HttpResponse, ApiError> {
    let access = state
        .usecases
        .decide_support(caller.0, id, decision)
        .await?;
    Ok(HttpResponse::Ok().json(SupportView::from(access)))
}

#[utoipa::path(post, path = "/v1/support-access/requests/{id}/approve",
    responses((status = 200, body = SupportView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn approve(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    decide(state, caller, path.into_inner(), Decision::Approve).await
}

#[utoipa::path(post, path = "/v1/support-access/requests/{id}/decline",
    responses((status = 200, body = SupportView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn decline(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    decide(state, caller, path.into_inner(), Decision::Decline).await
}

#[utoipa::path(post, path = "/v1/support-access/requests/{id}/revoke",
    responses((status = 200, body = SupportView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    decide(state, caller, path.into_inner(), Decision::Revoke).await
}

#[utoipa::path(get, path = "/v1/accounts/{a}/support-access", params(StateQuery),
    responses((status = 200, description = "the support access of one state, or of every state"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<StateQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let account =
        AccountId::parse(&path).map_err(|_| OpError::not_found(format!("account {path}")))?;
    let list = storage::staff::list_filter(query.state.as_deref())?;
    let rtx = state.store.begin_read()?;
    let listed = storage::support::list(&rtx, &caller.0, &account, list)?;
    let paging = (query.cursor.as_deref(), query.limit.as_deref());
    let page = page_by("support-access", listed, paging, |access| access.id.clone())?;
    let mut named = Vec::with_capacity(page.items.len());
    for access in page.items {
        let staff_name = storage::read::principal_name(&rtx, &access.staff)?;
        named.push((access, staff_name));
    }
    let page = storage::read::Page {
        items: named,
        next_cursor: page.next_cursor,
    };
    Ok(list_answer(&request, page, |(access, staff_name)| {
        let inherited = access.account_id != account;
        SupportView {
            inherited,
            staff_name,
            ..SupportView::from(access)
        }
    }))
}

/// `GET /v1/support-access/mine`: the optional list filter and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MineQuery {
    /// `pending`, `active` or `archived`; every state when absent.
    pub state: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

/// The caller's own support access in every account (staff only), for the Staff page.
#[utoipa::path(get, path = "/v1/support-access/mine", params(MineQuery),
    responses((status = 200, description = "`{items: [SupportView], next_cursor?}`"), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn mine(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<MineQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let list = storage::staff::list_filter(query.state.as_deref())?;
    let rtx = state.store.begin_read()?;
    let listed = storage::staff::my_access(&rtx, &caller.0, list)?;
    let paging = (query.cursor.as_deref(), query.limit.as_deref());
    let page = page_by("support-access/mine", listed, paging, |access| {
        access.id.clone()
    })?;
    let name = caller.0.name.clone();
    Ok(list_answer(&request, page, |access| SupportView {
        staff_name: Some(name.clone()),
        ..SupportView::from(access)
    }))
}

#[utoipa::path(post, path = "/v1/support-cases", request_body = NewCase,
    responses((status = 201, body = SupportView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn open_case(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<NewCase>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let account = id_field("account_id", AccountId::parse(&body.account_id))?;
    let access = state
        .usecases
        .open_case(caller.0, account, body.ticket_id, body.staff_id)
        .await?;
    Ok(HttpResponse::Created().json(SupportView::from(access)))
}

#[utoipa::path(post, path = "/v1/support-cases/{id}/close",
    responses((status = 200, body = SupportView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn close_case(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let access = state.usecases.close_case(caller.0, id).await?;
    Ok(HttpResponse::Ok().json(SupportView::from(access)))
}
