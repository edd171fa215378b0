//! An account's own telemetry retention: `GET` and `PUT /v1/accounts/{a}/retention`, for
//! the account's admin and platform admins (`storage::retention` holds the rules).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use storage::retention::AccountRetention;
use storage::{AccountId, OpError};
use utoipa::ToSchema;

use super::auth::Caller;
use super::body::Json;
use super::problem::{ApiError, Problem};
use super::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionView {
    pub account_id: String,
    /// Days the account's telemetry is kept (0: forever): its own setting, else the
    /// gateway's default. Grantees and mirrors of its assets see no older points.
    pub telemetry_days: u32,
    /// `account` when the account set its own, `default` when it follows the gateway's.
    pub source: &'static str,
}

impl From<AccountRetention> for RetentionView {
    fn from(retention: AccountRetention) -> Self {
        RetentionView {
            account_id: retention.account_id.to_string(),
            telemetry_days: retention.telemetry_days,
            source: if retention.own_days.is_some() {
                "account"
            } else {
                "default"
            },
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionBody {
    /// Whole days from 1 to 3650, or `null` to follow the gateway's default. Required.
    #[schema(value_type = Option<i64>)]
    pub telemetry_days: Value,
}

fn account(path: &str) -> Result<AccountId, OpError> {
    AccountId::parse(path).map_err(|_| OpError::not_found(format!("account {path}")))
}

#[utoipa::path(get, path = "/v1/accounts/{a}/retention",
    responses((status = 200, body = RetentionView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_retention(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let account = account(&path)?;
    let default_days = state.usecases.retention.telemetry_days;
    let retention = storage::retention::account_retention(
        &state.store.begin_read()?,
        &caller.0,
        &account,
        default_days,
    )?;
    Ok(HttpResponse::Ok().json(RetentionView::from(retention)))
}

#[utoipa::path(put, path = "/v1/accounts/{a}/retention", request_body = RetentionBody,
    responses((status = 200, body = RetentionView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_retention(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<RetentionBody>,
) -> Result<HttpResponse, ApiError> {
    let account = account(&path)?;
    let days = match &body.telemetry_days {
        Value::Null => None,
        Value::Number(number) => Some(number.as_i64().ok_or_else(|| {
            OpError::invalid(
                "telemetry_days",
                "must be a whole number of days from 1 to 3650",
            )
        })?),
        _ => {
            return Err(OpError::invalid(
                "telemetry_days",
                "must be a whole number of days from 1 to 3650, or null",
            )
            .into())
        }
    };
    let retention = state
        .usecases
        .set_account_retention(caller.0, account, days)
        .await?;
    Ok(HttpResponse::Ok().json(RetentionView::from(retention)))
}
