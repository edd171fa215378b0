//! An account's users, as its admin manages them (`storage::users` holds the rules):
//! list, change a role, disable or enable, delete, rotate a token.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use storage::model::Role;
use storage::users::{UserPatch, UserRecord};
use storage::{AccountId, OpError};
use utoipa::ToSchema;

use super::auth::Caller;
use super::body::Json;
use super::dto::{page_by, PageQuery};
use super::problem::{ApiError, Problem};
use super::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub name: String,
    /// `admin`, `fleet_admin` or `viewer`.
    #[schema(schema_with = super::openapi::user_role)]
    pub role: &'static str,
    pub account_id: String,
    /// RFC 3339.
    pub created_at: String,
    pub disabled: bool,
    /// RFC 3339, while disabled.
    pub disabled_at: Option<String>,
    /// RFC 3339: when its token last authenticated a request; absent if never.
    pub last_used_at: Option<String>,
}

impl From<UserRecord> for UserView {
    fn from(record: UserRecord) -> Self {
        let account_id = record
            .user
            .home_account()
            .map(ToString::to_string)
            .unwrap_or_default();
        UserView {
            id: record.user.id.to_string(),
            name: record.user.name,
            role: record.role.as_str(),
            account_id,
            created_at: record.user.created_at.to_rfc3339(),
            disabled: record.disabled_at.is_some(),
            disabled_at: record.disabled_at.map(|at| at.to_rfc3339()),
            last_used_at: record.last_used_at.map(|at| at.to_rfc3339()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<UserView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatchBody {
    /// `admin`, `fleet_admin` or `viewer`.
    #[schema(schema_with = super::openapi::user_role)]
    pub role: Option<String>,
    /// `true` disables the user (its token stops working at once); `false` enables it
    /// again (it then needs a rotated token).
    pub disabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    /// Shown once; the old token no longer works.
    pub token: String,
}

fn account_of(raw: &str) -> Result<AccountId, OpError> {
    AccountId::parse(raw).map_err(|_| OpError::not_found(format!("account {raw}")))
}

/// `/accounts/{a}/users/{u}`: the account id checked, the user id as given.
fn user_of(path: web::Path<(String, String)>) -> Result<(AccountId, String), OpError> {
    let (account, user) = path.into_inner();
    Ok((account_of(&account)?, user))
}

#[utoipa::path(get, path = "/v1/accounts/{a}/users", params(PageQuery),
    responses((status = 200, body = UserList), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list_users(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<PageQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let account = account_of(&path)?;
    let users = storage::users::list(&state.store.begin_read()?, &caller.0, &account)?;
    let page = page_by("users", users, query.paging(), |record| {
        record.user.id.to_string()
    })?;
    let items = page
        .items
        .into_iter()
        .map(|record| view(&state, record))
        .collect();
    Ok(
        super::link::ok_page(&request, page.next_cursor.as_deref()).json(UserList {
            items,
            next_cursor: page.next_cursor,
        }),
    )
}

#[utoipa::path(patch, path = "/v1/accounts/{a}/users/{u}", request_body = UserPatchBody,
    responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: Json<UserPatchBody>,
) -> Result<HttpResponse, ApiError> {
    let (account, user) = user_of(path)?;
    let body = body.into_inner();
    let role = body
        .role
        .map(|raw| {
            Role::parse(&raw)
                .ok_or_else(|| OpError::invalid("role", format!("must be one of {}", Role::NAMES)))
        })
        .transpose()?;
    let patch = UserPatch {
        role,
        disabled: body.disabled,
    };
    let record = state
        .usecases
        .update_user(caller.0, account, user, patch)
        .await?;
    Ok(HttpResponse::Ok().json(view(&state, record)))
}

#[utoipa::path(delete, path = "/v1/accounts/{a}/users/{u}",
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (account, user) = user_of(path)?;
    state.usecases.delete_user(caller.0, account, user).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/v1/accounts/{a}/users/{u}/token",
    responses((status = 200, body = TokenView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn rotate_token(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (account, user) = user_of(path)?;
    let id = user.clone();
    let token = state.usecases.rotate_token(caller.0, account, user).await?;
    Ok(HttpResponse::Ok().json(TokenView { id, token }))
}

/// The user as listed: the store is at most one flush behind what this gateway noted of
/// its last use, so the newer of the two is shown.
fn view(state: &AppState, mut record: storage::users::UserRecord) -> UserView {
    let noted = state.last_used.noted(&record.user.id);
    record.last_used_at = record.last_used_at.max(noted);
    UserView::from(record)
}
