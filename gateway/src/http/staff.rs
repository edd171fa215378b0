//! Platform staff as platform staff read them and the platform admin manages them
//! (`storage::staff`, `storage::staff_admin` hold the rules): the staff list, and a
//! member's disable or enable, delete and token rotation. Creating one is
//! [`super::accounts::create_staff`].

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use storage::model::{Principal, StaffRole};
use storage::time::Timestamp;
use storage::OpError;
use utoipa::ToSchema;

use super::auth::Caller;
use super::body::Json;
use super::dto::{list_answer, page_by};
use super::problem::{ApiError, Problem};
use super::users::TokenView;
use super::AppState;

/// `GET /v1/staff`: the role filter and paging.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StaffQuery {
    /// `platform_admin`, `support` or `tech_support`.
    pub role: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

/// A staff member as the staff list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffView {
    pub id: String,
    pub name: String,
    #[schema(schema_with = super::openapi::staff_role)]
    pub role: &'static str,
    /// RFC 3339.
    pub created_at: String,
    /// A disabled member has no token and no console session; enabled again, it needs a
    /// rotated token.
    pub disabled: bool,
    /// RFC 3339, while disabled.
    pub disabled_at: Option<String>,
}

impl StaffView {
    fn new(member: &Principal, disabled_at: Option<Timestamp>) -> StaffView {
        StaffView {
            id: member.id.to_string(),
            name: member.name.clone(),
            role: member.role_name(),
            created_at: member.created_at.to_rfc3339(),
            disabled: disabled_at.is_some(),
            disabled_at: disabled_at.map(|at| at.to_rfc3339()),
        }
    }
}

/// `PATCH /v1/staff/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffPatchBody {
    /// `true` disables the member: its token, console sessions, live streams and support
    /// access end at once; `false` enables it again (it then needs a rotated token).
    pub disabled: bool,
}

/// The platform's staff members (of one role), for staff: the platform admin's case form
/// picks the tech support member from it, the Platform page manages them.
#[utoipa::path(get, path = "/v1/staff", params(StaffQuery),
    responses((status = 200, description = "`{items: [StaffView], next_cursor?}`"), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list_staff(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<StaffQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let role = query
        .role
        .as_deref()
        .map(|raw| {
            StaffRole::parse(raw).ok_or_else(|| {
                OpError::invalid("role", format!("must be one of {}", StaffRole::NAMES))
            })
        })
        .transpose()?;
    let staff = storage::staff::list(&state.store.begin_read()?, &caller.0, role)?;
    let paging = (query.cursor.as_deref(), query.limit.as_deref());
    let page = page_by("staff", staff, paging, |(member, _)| member.id.to_string())?;
    Ok(list_answer(&request, page, |(member, disabled_at)| {
        StaffView::new(&member, disabled_at)
    }))
}

#[utoipa::path(patch, path = "/v1/staff/{id}", request_body = StaffPatchBody,
    responses((status = 200, body = StaffView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_staff(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<StaffPatchBody>,
) -> Result<HttpResponse, ApiError> {
    let disabled = body.into_inner().disabled;
    let change = state
        .usecases
        .set_staff_disabled(caller.0, path.into_inner(), disabled)
        .await?;
    let member = change.member;
    Ok(HttpResponse::Ok().json(StaffView::new(&member.member, member.disabled_at)))
}

#[utoipa::path(delete, path = "/v1/staff/{id}",
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_staff(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .usecases
        .delete_staff(caller.0, path.into_inner())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/v1/staff/{id}/token",
    responses((status = 200, body = TokenView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn rotate_staff_token(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let token = state
        .usecases
        .rotate_staff_token(caller.0, id.clone())
        .await?;
    Ok(HttpResponse::Ok().json(TokenView { id, token }))
}
