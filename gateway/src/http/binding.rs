//! Which unit reports for an asset, and what a unit's hardware supports
//! (`storage::binding`): swap the unit of an asset, change a unit's capabilities; and
//! deleting an asset (`storage::retire`), which ends what gave access through it.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use storage::{AssetId, DeviceId, OpError};
use utoipa::ToSchema;

use super::auth::Caller;
use super::body::Json;
use super::dto::{id_field, present, AccountQuery, CapabilitiesDto};
use super::fleet::account_param;
use super::keys::DistributionView;
use super::problem::{ApiError, Problem};
use super::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitBody {
    /// The unit that reports for the asset from now on; `null` for none. Required.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub device_id: Option<Option<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitAnswer {
    pub asset_id: String,
    pub device_id: Option<String>,
    /// Where the changed key sets (the old unit's, emptied; the new unit's) reached.
    pub distribution: DistributionView,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevicePatch {
    pub capabilities: CapabilitiesDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceChanged {
    pub id: String,
    pub asset_id: Option<String>,
    pub capabilities: CapabilitiesDto,
}

#[utoipa::path(put, path = "/v1/assets/{x}/unit", request_body = UnitBody, params(AccountQuery),
    responses((status = 200, body = UnitAnswer), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem, description = "the unit reports for another asset, or cannot use a live key of this one (named)")))]
pub async fn swap_unit(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<AccountQuery>,
    body: Json<UnitBody>,
) -> Result<HttpResponse, ApiError> {
    let asset = AssetId::parse(&path).map_err(|_| OpError::not_found(format!("asset {path}")))?;
    let account = account_param(&caller, query.account_id.as_deref())?;
    let unit = body
        .into_inner()
        .device_id
        .ok_or_else(|| OpError::invalid("device_id", "required: a unit id, or null for none"))?
        .map(|raw| id_field("device_id", DeviceId::parse(&raw)))
        .transpose()?;
    let distribution = state
        .usecases
        .swap_unit(caller.0, account, asset.clone(), unit.clone())
        .await?;
    Ok(HttpResponse::Ok().json(UnitAnswer {
        asset_id: asset.to_string(),
        device_id: unit.map(|unit| unit.to_string()),
        distribution: distribution.into(),
    }))
}

#[utoipa::path(patch, path = "/v1/devices/{d}", request_body = DevicePatch,
    responses((status = 200, body = DeviceChanged), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem, description = "live keys of its asset need a capability being removed (named)")))]
pub async fn patch_device(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<DevicePatch>,
) -> Result<HttpResponse, ApiError> {
    let id = DeviceId::parse(&path).map_err(|_| OpError::not_found(format!("device {path}")))?;
    let capabilities = body.into_inner().capabilities.into();
    let device = state
        .usecases
        .set_capabilities(caller.0, id, capabilities)
        .await?;
    Ok(HttpResponse::Ok().json(DeviceChanged {
        id: device.id.to_string(),
        asset_id: device.bound_asset.map(|bound| bound.asset_id.to_string()),
        capabilities: device.capabilities.into(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssetDeleted {
    pub asset_id: String,
    /// Where the changed key sets (its unit's, emptied; units of keys that also opened
    /// other assets) reached.
    pub distribution: DistributionView,
}

#[utoipa::path(delete, path = "/v1/assets/{x}", params(AccountQuery),
    responses((status = 200, body = AssetDeleted), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_asset(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let asset = AssetId::parse(&path).map_err(|_| OpError::not_found(format!("asset {path}")))?;
    let account = account_param(&caller, query.account_id.as_deref())?;
    let distribution = state
        .usecases
        .delete_asset(caller.0, account, asset.clone())
        .await?;
    Ok(HttpResponse::Ok().json(AssetDeleted {
        asset_id: asset.to_string(),
        distribution: distribution.into(),
    }))
}
