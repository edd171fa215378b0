//! Tenant sharing (rule 5): sharing profiles, and mirroring an asset's telemetry and
//! details into another account. A telemetry change commits, then the source's unit is
//! re-bound and acknowledges, then the call answers (the same ordering as grants).

use std::collections::BTreeSet;

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use storage::details::Field;
use storage::model::Asset;
use storage::tenant::{Kind, ShareRequest, SharingProfile};
use storage::{AccountId, AssetId, OpError};
use utoipa::ToSchema;

use super::auth::Caller;
use super::body::Json;
use super::dto::{id_field, list_answer, page_by, AccountQuery, AssetView, ListQuery};
use super::fleet::{account_param, visible_asset};
use super::problem::{ApiError, Problem};
use super::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProfile {
    pub name: String,
    /// From: name, serial, counters, groups, working_hours, service_flags, calibration, display.
    pub fields: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub fields: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub fields: Vec<&'static str>,
}

impl From<SharingProfile> for ProfileView {
    fn from(profile: SharingProfile) -> Self {
        ProfileView {
            id: profile.id,
            account_id: profile.account_id.to_string(),
            name: profile.name,
            fields: profile.fields.iter().map(|field| field.as_str()).collect(),
        }
    }
}

fn fields(raw: &[String]) -> Result<BTreeSet<Field>, OpError> {
    if raw.is_empty() {
        return Err(OpError::invalid(
            "fields",
            format!("name at least one of {}", Field::NAMES),
        ));
    }
    raw.iter()
        .map(|name| {
            Field::parse(name).ok_or_else(|| {
                OpError::invalid(
                    "fields",
                    format!("unknown field {name:?}; known: {}", Field::NAMES),
                )
            })
        })
        .collect()
}

#[utoipa::path(post, path = "/v1/sharing-profiles", request_body = NewProfile, params(AccountQuery),
    responses((status = 201, body = ProfileView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_profile(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<AccountQuery>,
    body: Json<NewProfile>,
) -> Result<HttpResponse, ApiError> {
    let account = account_param(&caller, query.account_id.as_deref())?;
    let fields = fields(&body.fields)?;
    let name = body.into_inner().name;
    let profile = state
        .usecases
        .create_profile(caller.0, account, name, fields)
        .await?;
    Ok(HttpResponse::Created().json(ProfileView::from(profile)))
}

#[utoipa::path(patch, path = "/v1/sharing-profiles/{id}", request_body = ProfilePatch,
    responses((status = 200, body = ProfileView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_profile(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<ProfilePatch>,
) -> Result<HttpResponse, ApiError> {
    let fields = fields(&body.fields)?;
    let id = path.into_inner();
    let profile = state.usecases.update_profile(caller.0, id, fields).await?;
    Ok(HttpResponse::Ok().json(ProfileView::from(profile)))
}

#[utoipa::path(delete, path = "/v1/sharing-profiles/{id}",
    responses((status = 204, description = "deleted"), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "details shares still use it; the detail names each (source asset, target account and asset)")))]
pub async fn delete_profile(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .usecases
        .delete_profile(caller.0, path.into_inner())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/v1/sharing-profiles", params(ListQuery), responses((status = 200, description = "the account's profiles"), (status = 422, body = Problem)))]
pub async fn list_profiles(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<ListQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let account = account_param(&caller, query.account_id.as_deref())?;
    let profiles = storage::tenant::profiles(&state.store.begin_read()?, &caller.0, &account)?;
    let paging = (query.cursor.as_deref(), query.limit.as_deref());
    let page = page_by("sharing-profiles", profiles, paging, |profile| {
        profile.id.clone()
    })?;
    Ok(list_answer(&request, page, ProfileView::from))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareTarget {
    pub target_account_id: String,
    pub target_asset_id: String,
    /// Details sharing only.
    pub profile_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Target {
    pub target_account_id: String,
    pub target_asset_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MirrorOf {
    pub account_id: String,
    pub asset_id: String,
    pub telemetry_live: bool,
}

/// Both sections of an asset's tenant sharing; a mirror also names its source.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharingView {
    /// Every target of the source's telemetry sharing (each its own mirror).
    pub telemetry: Vec<Target>,
    /// Every target of its details sharing, with the profile of each.
    pub details: Vec<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror_of: Option<MirrorOf>,
}

impl From<&Asset> for SharingView {
    fn from(asset: &Asset) -> Self {
        SharingView {
            telemetry: asset
                .sharing
                .telemetry
                .iter()
                .map(|(account, id)| Target {
                    target_account_id: account.to_string(),
                    target_asset_id: id.to_string(),
                    profile_id: None,
                })
                .collect(),
            details: asset
                .sharing
                .details
                .iter()
                .map(|(account, id, profile)| Target {
                    target_account_id: account.to_string(),
                    target_asset_id: id.to_string(),
                    profile_id: Some(profile.clone()),
                })
                .collect(),
            mirror_of: asset.mirror.as_ref().map(|link| MirrorOf {
                account_id: link.source_account.to_string(),
                asset_id: link.source_asset.to_string(),
                telemetry_live: link.telemetry_live(),
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShareAnswer {
    pub sharing: SharingView,
    /// The target asset as the target account sees it.
    pub target: AssetView,
}

fn source_id(path: &str) -> Result<AssetId, OpError> {
    AssetId::parse(path).map_err(|_| OpError::not_found(format!("asset {path}")))
}

async fn share(
    state: web::Data<AppState>,
    caller: Caller,
    path: String,
    account: Option<String>,
    body: ShareTarget,
    kind: Kind,
    replace: bool,
) -> Result<HttpResponse, ApiError> {
    let request = ShareRequest {
        kind,
        source: source_id(&path)?,
        source_account: account_param(&caller, account.as_deref())?,
        target: id_field(
            "target_account_id",
            AccountId::parse(&body.target_account_id),
        )?,
        target_asset: id_field("target_asset_id", AssetId::parse(&body.target_asset_id))?,
        profile_id: body.profile_id,
        replace,
    };
    let (source, mirror) = state.usecases.share(caller.0, request).await?;
    Ok(HttpResponse::Ok().json(ShareAnswer {
        sharing: SharingView::from(&source),
        target: AssetView::owned(mirror),
    }))
}

async fn unshare(
    state: web::Data<AppState>,
    caller: Caller,
    path: String,
    account: Option<String>,
    kind: Kind,
    only: Option<(AccountId, AssetId)>,
) -> Result<HttpResponse, ApiError> {
    let source = source_id(&path)?;
    let account = account_param(&caller, account.as_deref())?;
    state
        .usecases
        .unshare(caller.0, kind, account, source, only)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(put, path = "/v1/assets/{x}/sharing/telemetry", request_body = ShareTarget, params(AccountQuery),
    responses((status = 200, body = ShareAnswer), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn share_telemetry(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<AccountQuery>,
    body: Json<ShareTarget>,
) -> Result<HttpResponse, ApiError> {
    share(
        state,
        caller,
        path.into_inner(),
        query.into_inner().account_id,
        body.into_inner(),
        Kind::Telemetry,
        true,
    )
    .await
}

#[utoipa::path(put, path = "/v1/assets/{x}/sharing/details", request_body = ShareTarget, params(AccountQuery),
    responses((status = 200, body = ShareAnswer), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn share_details(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<AccountQuery>,
    body: Json<ShareTarget>,
) -> Result<HttpResponse, ApiError> {
    share(
        state,
        caller,
        path.into_inner(),
        query.into_inner().account_id,
        body.into_inner(),
        Kind::Details,
        true,
    )
    .await
}

#[utoipa::path(delete, path = "/v1/assets/{x}/sharing/telemetry", params(AccountQuery),
    responses((status = 204, description = "stopped; no later point reaches the target"), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn unshare_telemetry(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    unshare(
        state,
        caller,
        path.into_inner(),
        query.into_inner().account_id,
        Kind::Telemetry,
        None,
    )
    .await
}

#[utoipa::path(delete, path = "/v1/assets/{x}/sharing/details", params(AccountQuery),
    responses((status = 204, description = "stopped; the mirror keeps what was copied"), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn unshare_details(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    unshare(
        state,
        caller,
        path.into_inner(),
        query.into_inner().account_id,
        Kind::Details,
        None,
    )
    .await
}

#[utoipa::path(get, path = "/v1/assets/{x}/sharing", params(AccountQuery),
    responses((status = 200, body = SharingView), (status = 404, body = Problem)))]
pub async fn sharing(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let seen = visible_asset(&state, &caller, query.account_id.as_deref(), &path)?;
    // A grantee sees the asset, not where its owner shares it.
    if seen.relation == storage::visibility::Relation::Shared {
        seen.require_owned("see the sharing of")?;
    }
    Ok(HttpResponse::Ok().json(SharingView::from(&seen.asset)))
}

/// `telemetry` or `details`, as a path segment; anything else names no route (404).
fn kind_of(raw: &str) -> Result<Kind, OpError> {
    match raw {
        "telemetry" => Ok(Kind::Telemetry),
        "details" => Ok(Kind::Details),
        _ => Err(OpError::not_found(format!("sharing kind {raw}"))),
    }
}

#[utoipa::path(post, path = "/v1/assets/{x}/sharing/{kind}/targets", request_body = ShareTarget, params(AccountQuery),
    responses((status = 200, body = ShareAnswer, description = "the target is added; the kind's other targets stay"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn add_target(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: super::query::Query<AccountQuery>,
    body: Json<ShareTarget>,
) -> Result<HttpResponse, ApiError> {
    let (asset, kind) = path.into_inner();
    let kind = kind_of(&kind)?;
    let account = query.into_inner().account_id;
    share(
        state,
        caller,
        asset,
        account,
        body.into_inner(),
        kind,
        false,
    )
    .await
}

#[utoipa::path(delete, path = "/v1/assets/{x}/sharing/{kind}/targets/{target_account}/{target_asset}", params(AccountQuery),
    responses((status = 204, description = "sharing into that target stopped; the others go on"), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn remove_target(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, String, String)>,
    query: super::query::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let (asset, kind, target_account, target_asset) = path.into_inner();
    let kind = kind_of(&kind)?;
    let missing = || {
        OpError::not_found(format!(
            "sharing of asset {asset} into {target_account}/{target_asset}"
        ))
    };
    let target = (
        AccountId::parse(&target_account).map_err(|_| missing())?,
        AssetId::parse(&target_asset).map_err(|_| missing())?,
    );
    let account = query.into_inner().account_id;
    unshare(state, caller, asset, account, kind, Some(target)).await
}
