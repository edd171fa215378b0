//! Partnerships, visibility grants, audit, and account children. Every grant change is one
//! transaction; only after it commits are the affected `DeviceActor`s re-bound, and the
//! answer waits for their acknowledgement (DESIGN section 2's ordering contract).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use storage::model::{AuditEntry, Grant, Partnership};
use storage::sharing::{Change, GrantRequest};
use storage::time::Timestamp;
use storage::{AccountId, AssetId, GrantId, OpError, PartnershipId};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::Json;
use super::dto::{id_field, list_answer, page_by, query_time, AccountView, PageQuery};
use super::fleet::account_param;
use super::problem::{ApiError, Problem};
use super::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPartnership {
    pub account_a: String,
    pub account_b: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnershipView {
    pub id: String,
    pub account_a: String,
    pub account_b: String,
    pub created_at: String,
}

impl From<Partnership> for PartnershipView {
    fn from(p: Partnership) -> Self {
        PartnershipView {
            id: p.id.to_string(),
            account_a: p.account_a.to_string(),
            account_b: p.account_b.to_string(),
            created_at: p.created_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnershipEnded {
    pub id: String,
    pub ended_grants: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    pub id: String,
    pub asset_id: String,
    pub owner_account_id: String,
    /// The grantee.
    pub account_id: String,
    pub from: String,
    pub until: Option<String>,
    /// Inside its window now.
    pub active: bool,
    /// Set on answers of grant calls: `created`, `updated` or `unchanged`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<&'static str>,
}

impl GrantView {
    fn new(grant: Grant, now: Timestamp, change: Option<Change>) -> Self {
        GrantView {
            active: grant.active_at(now),
            id: grant.id.to_string(),
            asset_id: grant.asset_id.to_string(),
            owner_account_id: grant.owner_account.to_string(),
            account_id: grant.target.to_string(),
            from: grant.from.to_rfc3339(),
            until: grant.until.map(|t| t.to_rfc3339()),
            change: change.map(Change::as_str),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantList {
    /// Only on a change (`POST`): whether it was a dry run. A list has none (design 5.1:
    /// a list answer is `{items, next_cursor?}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    pub items: Vec<GrantView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrants {
    /// The grantee account.
    pub account_id: String,
    pub asset_ids: Vec<String>,
    /// RFC 3339; default now (or the current start of an existing grant).
    pub from: Option<String>,
    /// RFC 3339; absent for a permanent grant.
    pub until: Option<String>,
    /// The owner account when the caller administers several (default: the caller's).
    pub owner_account_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveGrants {
    pub account_id: String,
    pub asset_ids: Vec<String>,
    pub owner_account_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DryRun {
    /// `true` answers what would change and changes nothing.
    pub dry_run: Option<String>,
}

impl DryRun {
    pub fn flag(&self) -> Result<bool, OpError> {
        match self.dry_run.as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(OpError::invalid("dry_run", "must be true or false")),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GrantFilter {
    pub asset_id: Option<String>,
    pub account_id: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

fn account_field(field: &str, raw: &str) -> Result<AccountId, OpError> {
    id_field(field, AccountId::parse(raw))
}

fn asset_ids(raw: &[String]) -> Result<Vec<AssetId>, OpError> {
    raw.iter()
        .map(|id| id_field("asset_ids", AssetId::parse(id)))
        .collect()
}

fn time_field(field: &str, raw: Option<&str>) -> Result<Option<Timestamp>, OpError> {
    raw.map(|raw| {
        Timestamp::parse_rfc3339(raw)
            .ok_or_else(|| OpError::invalid(field, "must be an RFC 3339 time"))
    })
    .transpose()
}

#[utoipa::path(post, path = "/v1/partnerships", request_body = NewPartnership,
    responses((status = 201, body = PartnershipView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn create_partnership(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<NewPartnership>,
) -> Result<HttpResponse, ApiError> {
    let a = account_field("account_a", &body.account_a)?;
    let b = account_field("account_b", &body.account_b)?;
    let partnership = state.usecases.create_partnership(caller.0, a, b).await?;
    Ok(HttpResponse::Created().json(PartnershipView::from(partnership)))
}

#[utoipa::path(delete, path = "/v1/partnerships/{id}",
    responses((status = 200, body = PartnershipEnded), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn end_partnership(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = PartnershipId::parse(&path)
        .map_err(|_| OpError::not_found(format!("partnership {path}")))?;
    let (partnership, ended) = state.usecases.end_partnership(caller.0, id).await?;
    Ok(HttpResponse::Ok().json(PartnershipEnded {
        id: partnership.id.to_string(),
        ended_grants: ended.iter().map(|grant| grant.id.to_string()).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/partnerships", params(PageQuery), responses((status = 200, description = "`{items: [PartnershipView], next_cursor?}`"), (status = 422, body = Problem)))]
pub async fn list_partnerships(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<PageQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let items = storage::sharing::list_partnerships(&state.store.begin_read()?, &caller.0)?;
    let page = page_by("partnerships", items, query.paging(), |p| p.id.to_string())?;
    Ok(list_answer(&request, page, PartnershipView::from))
}

/// `GET /v1/share-targets`: the owner account, the search and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ShareTargetQuery {
    /// The owner account (default: the caller's own).
    pub account_id: Option<String>,
    /// Part of the target account's name, any case.
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

/// An account a grant of the owner's may go to.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShareTargetView {
    pub account_id: String,
    pub name: String,
    /// `descendant` (below the owner) or `partner` (a partnership with the owner).
    pub reach: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partnership_id: Option<String>,
}

#[utoipa::path(get, path = "/v1/share-targets", params(ShareTargetQuery),
    responses((status = 200, description = "`{items: [ShareTargetView], next_cursor?}`"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn share_targets(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<ShareTargetQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let owner = account_param(&caller, query.account_id.as_deref())?;
    let q = query.q.as_deref().filter(|q| !q.is_empty());
    let targets =
        storage::share_targets::share_targets(&state.store.begin_read()?, &caller.0, &owner, q)?;
    let paging = (query.cursor.as_deref(), query.limit.as_deref());
    let page = page_by("share-targets", targets, paging, |target| {
        target.account.id.to_string()
    })?;
    Ok(list_answer(&request, page, |target| ShareTargetView {
        account_id: target.account.id.to_string(),
        name: target.account.name,
        reach: match target.partnership {
            None => "descendant",
            Some(_) => "partner",
        },
        partnership_id: target.partnership,
    }))
}

#[utoipa::path(post, path = "/v1/visibility/grants", request_body = NewGrants, params(DryRun),
    responses((status = 201, body = GrantList), (status = 200, description = "dry run", body = GrantList), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_grants(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<DryRun>,
    body: Json<NewGrants>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let request = GrantRequest {
        owner: account_param(&caller, body.owner_account_id.as_deref())?,
        target: account_field("account_id", &body.account_id)?,
        asset_ids: asset_ids(&body.asset_ids)?,
        from: time_field("from", body.from.as_deref())?,
        until: time_field("until", body.until.as_deref())?,
    };
    let dry_run = query.flag()?;
    let outcomes = state.usecases.grant(caller.0, request, dry_run).await?;
    let now = state.clock.now();
    let items = outcomes
        .into_iter()
        .map(|(grant, change)| GrantView::new(grant, now, Some(change)))
        .collect();
    let answer = GrantList {
        dry_run: Some(dry_run),
        items,
        next_cursor: None,
    };
    Ok(if dry_run {
        HttpResponse::Ok().json(answer)
    } else {
        HttpResponse::Created().json(answer)
    })
}

#[utoipa::path(post, path = "/v1/visibility/remove", request_body = RemoveGrants, params(DryRun),
    responses((status = 200, body = GrantList), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn remove_grants(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<DryRun>,
    body: Json<RemoveGrants>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let owner = account_param(&caller, body.owner_account_id.as_deref())?;
    let target = account_field("account_id", &body.account_id)?;
    let assets = asset_ids(&body.asset_ids)?;
    let dry_run = query.flag()?;
    let removed = state
        .usecases
        .remove_grants(caller.0, owner, target, assets, dry_run)
        .await?;
    let now = state.clock.now();
    Ok(HttpResponse::Ok().json(GrantList {
        dry_run: Some(dry_run),
        items: removed
            .into_iter()
            .map(|grant| GrantView::new(grant, now, None))
            .collect(),
        next_cursor: None,
    }))
}

#[utoipa::path(delete, path = "/v1/visibility/grants/{id}",
    responses((status = 204, description = "removed; no later point reaches the grantee"), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_grant(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = GrantId::parse(&path).map_err(|_| OpError::not_found(format!("grant {path}")))?;
    state.usecases.delete_grant(caller.0, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/v1/visibility/grants", params(GrantFilter), responses((status = 200, body = GrantList), (status = 422, body = Problem)))]
pub async fn list_grants(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<GrantFilter>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let asset = query
        .asset_id
        .as_deref()
        .map(|raw| id_field("asset_id", AssetId::parse(raw)))
        .transpose()?;
    let account = query
        .account_id
        .as_deref()
        .map(|raw| account_field("account_id", raw))
        .transpose()?;
    let now = state.clock.now();
    let grants = storage::visibility::grants(
        &state.store.begin_read()?,
        &caller.0,
        asset.as_ref(),
        account.as_ref(),
    )?;
    let paging = (query.cursor.as_deref(), query.limit.as_deref());
    let page = page_by("grants", grants, paging, |grant| grant.id.to_string())?;
    Ok(
        super::link::ok_page(&request, page.next_cursor.as_deref()).json(GrantList {
            dry_run: None,
            items: page
                .items
                .into_iter()
                .map(|grant| GrantView::new(grant, now, None))
                .collect(),
            next_cursor: page.next_cursor,
        }),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub account_id: Option<String>,
    /// RFC 3339, inclusive.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    /// Entries made by this principal id.
    pub actor: Option<String>,
    /// Entries of this action (`grant.create`), or of a family (`grant`: every `grant.*`).
    pub action: Option<String>,
    /// `oldest` (the default) or `newest` first.
    #[param(schema_with = super::openapi::audit_order)]
    pub order: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub seq: u64,
    pub at: String,
    pub actor: String,
    /// The support access (request or ticket id) the actor acted under.
    pub via: Option<String>,
    pub account_id: Option<String>,
    pub action: String,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl From<AuditEntry> for AuditView {
    fn from(entry: AuditEntry) -> Self {
        AuditView {
            seq: entry.seq,
            at: entry.at.to_rfc3339(),
            actor: entry.actor.to_string(),
            via: entry.via,
            account_id: entry.account_id.map(|id| id.to_string()),
            action: entry.action,
            target: entry.target,
            before: entry.before,
            after: entry.after,
        }
    }
}

#[utoipa::path(get, path = "/v1/audit", params(AuditQuery),
    responses((status = 200, description = "audit entries, oldest first unless `order=newest`"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn audit(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<AuditQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let account = query
        .account_id
        .as_deref()
        .map(|raw| account_field("account_id", raw))
        .transpose()?;
    let from = query_time("from", query.from.as_deref(), Timestamp(0))?;
    let to = query_time("to", query.to.as_deref(), Timestamp(u64::MAX))?;
    let newest_first = match query.order.as_deref() {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(_) => return Err(OpError::invalid("order", "oldest or newest").into()),
    };
    let filter = storage::audit::AuditFilter {
        span: (from, to),
        actor: query.actor.clone(),
        action: storage::audit::action_filter(query.action.as_deref())?,
        newest_first,
    };
    // Oldest and newest first page by the same `seq`, so either order takes the cursor.
    let after = storage::paging::after("audit", query.cursor.as_deref(), |key| key.parse().ok())?;
    let limit = super::dto::limit(query.limit.as_deref())?;
    let page = storage::audit::entries(
        &state.store.begin_read()?,
        &caller.0,
        account.as_ref(),
        &filter,
        (after, limit),
    )?;
    let page = storage::paging::with_cursor("audit", page);
    Ok(list_answer(&request, page, AuditView::from))
}

#[utoipa::path(get, path = "/v1/accounts/{a}/children", params(PageQuery), responses((status = 200, description = "direct sub-accounts"), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn children(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<PageQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = AccountId::parse(&path).map_err(|_| OpError::not_found(format!("account {path}")))?;
    let rtx = state.store.begin_read()?;
    storage::read::visible_account(&rtx, &caller.0, &id)?;
    let children = storage::read::children(&rtx, &id)?;
    let page = page_by("children", children, query.paging(), |child| {
        child.id.to_string()
    })?;
    Ok(list_answer(&request, page, AccountView::from))
}
