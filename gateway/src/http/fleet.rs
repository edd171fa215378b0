//! Devices and assets: registration, listings, history, latest point, device status.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use storage::model::CertificateKind;
use storage::read::acting_account;
use storage::time::Timestamp;
use storage::visibility::{Relation, Seen};
use storage::{AccountId, AssetId, DeviceId, OpError};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::Json;
use super::dto::*;
use super::problem::{ApiError, Problem};
use super::AppState;

pub(super) fn account_param(caller: &Caller, raw: Option<&str>) -> Result<AccountId, OpError> {
    let explicit = raw
        .map(|raw| id_field("account_id", AccountId::parse(raw)))
        .transpose()?;
    acting_account(&caller.0, explicit.as_ref())
}

/// An asset the caller may see (owned, or shared inside an open grant window), addressed
/// by the id its account knows.
pub(super) fn visible_asset(
    state: &AppState,
    caller: &Caller,
    account: Option<&str>,
    raw_id: &str,
) -> Result<Seen, ApiError> {
    let id = AssetId::parse(raw_id).map_err(|_| OpError::not_found(format!("asset {raw_id}")))?;
    let account = account_param(caller, account)?;
    Ok(storage::visibility::resolve(
        &state.store.begin_read()?,
        &caller.0,
        &account,
        &id,
        state.clock.now(),
    )?)
}

#[utoipa::path(post, path = "/v1/devices", request_body = NewDevice, params(AccountQuery),
    responses((status = 201, body = DeviceCreated), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn register_device(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<AccountQuery>,
    body: Json<NewDevice>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let id = id_field("id", DeviceId::parse(&body.id))?;
    let account = account_param(&caller, query.account_id.as_deref())?;
    let issued = super::certificates::unit_certificate_for(&state, &id, body.csr_pem.as_deref())?;
    let new = actors::usecases::fleet::NewDevice {
        certificate: issued.record(id.as_str(), CertificateKind::Unit, state.clock.now()),
        id,
        capabilities: body.capabilities.into(),
    };
    let device = state
        .usecases
        .register_device(caller.0, account, new)
        .await?;
    Ok(HttpResponse::Created().json(DeviceCreated {
        id: device.id.to_string(),
        account_id: device.account_id.to_string(),
        capabilities: device.capabilities.into(),
        ca_pem: Some(state.ca.ca_pem().to_owned()),
        cert_pem: Some(issued.cert_pem),
        key_pem: issued.key_pem,
    }))
}

#[utoipa::path(delete, path = "/v1/devices/{d}",
    responses((status = 204, description = "deregistered; anything the unit still sends is dropped"), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn deregister_device(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = DeviceId::parse(&path).map_err(|_| OpError::not_found(format!("device {path}")))?;
    state.usecases.deregister_device(caller.0, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/v1/devices/{d}/status",
    responses((status = 200, body = DeviceStatusView), (status = 404, body = Problem)))]
pub async fn device_status(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = DeviceId::parse(&path).map_err(|_| OpError::not_found(format!("device {path}")))?;
    let rtx = state.store.begin_read()?;
    let device = storage::read::visible_device(&rtx, &caller.0, &id)?;
    let status = live_status(&state, &rtx, &device.id).await?;
    Ok(HttpResponse::Ok().json(DeviceStatusView::new(id.as_str(), status)))
}

/// `GET /v1/devices`: the account, the search and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeviceListQuery {
    pub account_id: Option<String>,
    /// Part of the unit's id or of its asset's id, any case.
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

/// A unit of the account with its status.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    pub id: String,
    pub asset_id: Option<String>,
    pub created_at: String,
    pub capabilities: CapabilitiesDto,
    pub status: DeviceStatusView,
}

#[utoipa::path(get, path = "/v1/devices", params(DeviceListQuery),
    responses((status = 200, description = "`{items: [DeviceView], next_cursor?}`"), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list_devices(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<DeviceListQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let account = account_param(&caller, query.account_id.as_deref())?;
    let q = query.q.as_deref().filter(|q| !q.is_empty());
    let rtx = state.store.begin_read()?;
    let devices = storage::read::account_devices(&rtx, &caller.0, &account, q)?;
    let paging = (query.cursor.as_deref(), query.limit.as_deref());
    let page = page_by("devices", devices, paging, |device| device.id.to_string())?;
    let mut items = Vec::with_capacity(page.items.len());
    for device in page.items {
        let status = live_status(&state, &rtx, &device.id).await?;
        items.push(DeviceView {
            id: device.id.to_string(),
            asset_id: device.bound_asset.map(|bound| bound.asset_id.to_string()),
            created_at: device.created_at.to_rfc3339(),
            capabilities: device.capabilities.into(),
            status: DeviceStatusView::new(device.id.as_str(), status),
        });
    }
    let page = storage::read::Page {
        items,
        next_cursor: page.next_cursor,
    };
    Ok(list_answer(&request, page, |view| view))
}

/// A unit's status: its actor's while it runs (sessions, clock skew), else the stored one.
async fn live_status(
    state: &AppState,
    rtx: &storage::redb::ReadTransaction,
    id: &DeviceId,
) -> Result<actors::device::LiveStatus, ApiError> {
    Ok(match state.directory.device(id) {
        Some(actor) => actor
            .send(actors::device::GetStatus)
            .await
            .map_err(|err| ApiError::Internal(err.to_string()))?,
        None => actors::device::LiveStatus {
            stored: storage::read::device_status(rtx, id)?.unwrap_or_default(),
            session: Default::default(),
            clock_offset_ms: None,
        },
    })
}

#[utoipa::path(post, path = "/v1/assets", request_body = NewAssetDto, params(AccountQuery),
    responses((status = 201, body = AssetView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_asset(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<AccountQuery>,
    body: Json<NewAssetDto>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let new = storage::ops::NewAsset {
        id: id_field("id", AssetId::parse(&body.id))?,
        name: body.name,
        serial: body.serial,
        device_id: body
            .device_id
            .as_deref()
            .map(|raw| id_field("device_id", DeviceId::parse(raw)))
            .transpose()?,
        details: body
            .details
            .map(storage::details::validated)
            .transpose()?
            .unwrap_or_default(),
    };
    let account = account_param(&caller, query.account_id.as_deref())?;
    let asset = state.usecases.create_asset(caller.0, account, new).await?;
    Ok(HttpResponse::Created().json(AssetView::owned(asset)))
}

#[utoipa::path(get, path = "/v1/assets", params(AssetListQuery),
    responses((status = 200, body = AssetList), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list_assets(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<AssetListQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let account = account_param(&caller, query.account_id.as_deref())?;
    let limit = limit(query.limit.as_deref())?;
    let filter = storage::visibility::AssetFilter {
        q: query.q.clone().filter(|q| !q.is_empty()),
        relation: query
            .relation
            .as_deref()
            .map(|raw| {
                Relation::parse(raw)
                    .ok_or_else(|| OpError::invalid("relation", "must be owned, shared or mirror"))
            })
            .transpose()?,
    };
    let after = storage::paging::after("assets", query.cursor.as_deref(), |key| {
        Some(key.to_owned())
    })?;
    let page = storage::visibility::list(
        &state.store.begin_read()?,
        &caller.0,
        &account,
        &filter,
        (after.as_deref(), limit),
        state.clock.now(),
    )?;
    let page = storage::paging::with_cursor("assets", page);
    Ok(
        super::link::ok_page(&request, page.next_cursor.as_deref()).json(AssetList {
            items: page.items.into_iter().map(AssetView::from).collect(),
            next_cursor: page.next_cursor,
        }),
    )
}

#[utoipa::path(get, path = "/v1/assets/{x}", params(AccountQuery),
    responses((status = 200, body = AssetView), (status = 404, body = Problem)))]
pub async fn get_asset(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let seen = visible_asset(&state, &caller, query.account_id.as_deref(), &path)?;
    Ok(HttpResponse::Ok().json(AssetView::from(seen)))
}

/// Paged JSON by default; with `Accept: application/x-ndjson` or `text/csv` the whole range
/// in one streamed answer (see [`super::export`]), under the same visibility.
#[utoipa::path(get, path = "/v1/assets/{x}/telemetry", params(HistoryQuery),
    responses((status = 200, body = PointList, description = "a page of points; NDJSON or CSV (the whole range) as `Accept` asks"),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn history(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<HistoryQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let seen = visible_asset(&state, &caller, query.account_id.as_deref(), &path)?;
    let from = query_time("from", query.from.as_deref(), Timestamp(0))?;
    let to = query_time("to", query.to.as_deref(), Timestamp(u64::MAX))?;
    if to <= from {
        return Err(OpError::invalid("to", "must be after from").into());
    }
    let range = seen.readable(from, to);
    let accept = request
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    if let Some(format) = super::export::Format::from_accept(accept) {
        return Ok(super::export::respond(
            state.store.clone(),
            seen,
            range,
            format,
        ));
    }
    // A cursor continues the telemetry of the asset it was given for, by the point's `ts`.
    let list = format!("telemetry {}", path.as_str());
    let cursor = storage::paging::after(&list, query.cursor.as_deref(), |key| key.parse().ok())?;
    let limit = limit(query.limit.as_deref())?;
    let page = storage::read::history(
        &state.store.begin_read()?,
        seen.telemetry_key(),
        range,
        cursor,
        limit,
        |ts| seen.shows(ts),
    )?;
    let page = storage::paging::with_cursor(&list, page);
    Ok(super::link::ok_page(&request, page.next_cursor.as_deref())
        .content_type("application/json")
        .body(point_page(
            &page.items,
            &seen.asset.id,
            page.next_cursor.as_deref(),
        )))
}

/// [`PointList`] as text, each point rendered in one pass ([`storage::telemetry::Point::render_json`]):
/// a page of 1,000 points built as a `Value` tree first cost several times more.
fn point_page(items: &[storage::telemetry::Point], asset: &AssetId, next: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + items.len() * 256);
    out.extend_from_slice(b"{\"items\":[");
    for (i, point) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        point.render_json_into(asset, &mut out);
    }
    out.push(b']');
    if let Some(next) = next {
        // A cursor is letters and digits (`storage::paging::cursor`): it needs no escaping.
        out.extend_from_slice(b",\"next_cursor\":\"");
        out.extend_from_slice(next.as_bytes());
        out.push(b'"');
    }
    out.push(b'}');
    out
}

#[utoipa::path(get, path = "/v1/assets/{x}/latest", params(AccountQuery),
    responses((status = 200, description = "the newest point", body = Object), (status = 404, body = Problem)))]
pub async fn latest(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let seen = visible_asset(&state, &caller, query.account_id.as_deref(), &path)?;
    // The unit's actor holds points not yet committed; the store is the fallback.
    let live = match seen
        .asset
        .device_id
        .as_ref()
        .and_then(|id| state.directory.device(id))
    {
        Some(actor) => actor.send(actors::device::GetLatest).await.ok().flatten(),
        None => None,
    };
    let point = match live.filter(|point| seen.shows(point.ts)) {
        Some(point) => Some(point),
        None => storage::read::latest(
            &state.store.begin_read()?,
            seen.telemetry_key(),
            seen.window(),
            |ts| seen.shows(ts),
        )?,
    };
    let point =
        point.ok_or_else(|| OpError::not_found(format!("telemetry of asset {}", seen.asset.id)))?;
    Ok(HttpResponse::Ok().json(point.to_json(&seen.asset.id)))
}

#[utoipa::path(patch, path = "/v1/assets/{x}", request_body = AssetPatch, params(AccountQuery),
    responses((status = 200, body = AssetView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_asset(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<AccountQuery>,
    body: Json<AssetPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = AssetId::parse(&path).map_err(|_| OpError::not_found(format!("asset {path}")))?;
    let account = account_param(&caller, query.account_id.as_deref())?;
    let body = body.into_inner();
    let patch = storage::ops::AssetPatch {
        name: body.name,
        serial: body.serial,
        details: body.details.map(storage::details::validated).transpose()?,
    };
    let asset = state
        .usecases
        .update_asset(caller.0, account, id, patch)
        .await?;
    Ok(HttpResponse::Ok().json(AssetView::owned(asset)))
}
