//! Keys and access events (rule 6). A key change commits (bumping the key-set version of
//! every affected unit), then the new sets are published retained, then the call waits a
//! bounded time for the units' acknowledgements and answers which were `delivered` and
//! which are `pending`.

use actix_web::{web, HttpResponse};
use actors::directory::Distribution;
use serde::{Deserialize, Serialize};
use storage::keys::{AccessType, Key, KeyEdit, NewKey};
use storage::time::Timestamp;
use storage::{AssetId, OpError};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::Json;
use super::dto::{id_field, limit, list_answer, page_by, present, query_time};
use super::fleet::{account_param, visible_asset};
use super::problem::{ApiError, Problem};
use super::sharing::DryRun;
use super::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyDto {
    pub personal: bool,
    pub operator_id: Option<String>,
    pub asset_ids: Vec<String>,
    /// `digital_key`, `keypad_pin` or `dualid_tag`.
    #[schema(schema_with = super::openapi::access_type)]
    pub access_type: String,
    pub valid_from: String,
    pub valid_to: String,
    /// The DualID tag id; PINs and digital-key secrets are generated.
    pub credential: Option<String>,
    pub description: Option<String>,
    /// Whom the key is for: a customer of the account (`GET /v1/customers`).
    pub customer_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub personal: bool,
    pub operator_id: Option<String>,
    pub asset_ids: Vec<String>,
    #[schema(schema_with = super::openapi::access_type)]
    pub access_type: &'static str,
    pub valid_from: String,
    pub valid_to: String,
    pub credential: String,
    pub description: Option<String>,
    pub customer_id: Option<String>,
    pub created_at: String,
}

impl From<Key> for KeyView {
    fn from(key: Key) -> Self {
        KeyView {
            id: key.id,
            personal: key.personal,
            operator_id: key.operator_id,
            asset_ids: key
                .assets
                .into_iter()
                .map(|(id, _)| id.to_string())
                .collect(),
            access_type: key.access_type.as_str(),
            valid_from: key.valid_from.to_rfc3339(),
            valid_to: key.valid_to.to_rfc3339(),
            credential: key.credential,
            description: key.description,
            customer_id: key.customer_id,
            created_at: key.created_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DistributionView {
    /// Units that acknowledged their new key set before the answer.
    pub delivered: Vec<String>,
    /// Units offline or not acknowledging in time: they get the set when they reconnect.
    pub pending: Vec<String>,
}

impl From<Distribution> for DistributionView {
    fn from(d: Distribution) -> Self {
        DistributionView {
            delivered: d.delivered.iter().map(ToString::to_string).collect(),
            pending: d.pending.iter().map(ToString::to_string).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyAnswer {
    /// `true`: the review of `?dry_run=true`; nothing was stored or sent, and
    /// `distribution.pending` lists the units that would receive the key.
    pub dry_run: bool,
    pub key: KeyView,
    pub distribution: DistributionView,
}

/// `POST /v1/keys`: the account to act in and the review flag.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KeyCreateQuery {
    pub account_id: Option<String>,
    /// `true` checks the key and answers what it would do, changing nothing.
    pub dry_run: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeysAnswer {
    pub dry_run: bool,
    pub items: Vec<KeyView>,
    pub distribution: DistributionView,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    pub valid_to: Option<String>,
    pub description: Option<String>,
    /// A customer of the key's account; `null` takes the customer away.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub customer_id: Option<Option<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkEdit {
    pub ids: Vec<String>,
    pub valid_to: Option<String>,
    pub description: Option<String>,
    /// A customer of the keys' account; `null` takes the customer away.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub customer_id: Option<Option<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDelete {
    pub ids: Vec<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KeyQuery {
    /// Keys that open this asset.
    pub asset_id: Option<String>,
    /// Keys assigned to this operator.
    pub operator_id: Option<String>,
    /// Keys for this customer.
    pub customer_id: Option<String>,
    /// `future`, `active` or `expired`, by the key's date window now.
    pub state: Option<String>,
    pub account_id: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

fn time(field: &str, raw: &str) -> Result<Timestamp, OpError> {
    Timestamp::parse_rfc3339(raw).ok_or_else(|| OpError::invalid(field, "must be an RFC 3339 time"))
}

fn edit_of(
    valid_to: Option<String>,
    description: Option<String>,
    customer: Option<Option<String>>,
) -> Result<KeyEdit, OpError> {
    Ok(KeyEdit {
        valid_to: valid_to
            .as_deref()
            .map(|raw| time("valid_to", raw))
            .transpose()?,
        description,
        customer,
    })
}

#[utoipa::path(post, path = "/v1/keys", request_body = NewKeyDto, params(KeyCreateQuery),
    responses((status = 201, body = KeyAnswer), (status = 200, description = "dry run", body = KeyAnswer), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<KeyCreateQuery>,
    body: Json<NewKeyDto>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let account = account_param(&caller, query.account_id.as_deref())?;
    let dry_run = DryRun {
        dry_run: query.dry_run.clone(),
    }
    .flag()?;
    let new = NewKey {
        personal: body.personal,
        operator_id: body.operator_id,
        asset_ids: body
            .asset_ids
            .iter()
            .map(|id| id_field("asset_ids", AssetId::parse(id)))
            .collect::<Result<_, _>>()?,
        access_type: AccessType::parse(&body.access_type).ok_or_else(|| {
            OpError::invalid(
                "access_type",
                format!("must be one of {}", AccessType::NAMES),
            )
        })?,
        valid_from: time("valid_from", &body.valid_from)?,
        valid_to: time("valid_to", &body.valid_to)?,
        credential: body.credential,
        description: body.description,
        customer_id: body.customer_id,
    };
    let (key, distribution) = state
        .usecases
        .create_key(caller.0, account, new, dry_run)
        .await?;
    let answer = KeyAnswer {
        dry_run,
        key: key.into(),
        distribution: distribution.into(),
    };
    Ok(match dry_run {
        true => HttpResponse::Ok().json(answer),
        false => HttpResponse::Created().json(answer),
    })
}

#[utoipa::path(get, path = "/v1/keys", params(KeyQuery), responses((status = 200, description = "the account's keys"), (status = 422, body = Problem)))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<KeyQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let account = account_param(&caller, query.account_id.as_deref())?;
    let filter = storage::keys::KeyFilter {
        asset: query
            .asset_id
            .as_deref()
            .map(|raw| id_field("asset_id", AssetId::parse(raw)))
            .transpose()?,
        operator: query.operator_id.clone(),
        customer: query.customer_id.clone(),
        state: query
            .state
            .as_deref()
            .map(|raw| {
                storage::keys::KeyState::parse(raw)
                    .ok_or_else(|| OpError::invalid("state", "must be future, active or expired"))
            })
            .transpose()?,
    };
    let keys = storage::keys::list(
        &state.store.begin_read()?,
        &caller.0,
        &account,
        &filter,
        state.clock.now(),
    )?;
    let paging = (query.cursor.as_deref(), query.limit.as_deref());
    let page = page_by("keys", keys, paging, |key| key.id.clone())?;
    Ok(list_answer(&request, page, KeyView::from))
}

#[utoipa::path(patch, path = "/v1/keys/{id}", request_body = KeyPatch,
    responses((status = 200, body = KeyAnswer), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<KeyPatch>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let edit = edit_of(body.valid_to, body.description, body.customer_id)?;
    let ids = vec![path.into_inner()];
    let (mut keys, distribution) = state.usecases.edit_keys(caller.0, ids, edit, false).await?;
    let key = keys
        .pop()
        .ok_or_else(|| ApiError::Internal("edit returned no key".into()))?;
    Ok(HttpResponse::Ok().json(KeyAnswer {
        dry_run: false,
        key: key.into(),
        distribution: distribution.into(),
    }))
}

#[utoipa::path(delete, path = "/v1/keys/{id}",
    responses((status = 200, body = KeysAnswer), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ids = vec![path.into_inner()];
    let (keys, distribution) = state.usecases.delete_keys(caller.0, ids, false).await?;
    Ok(HttpResponse::Ok().json(KeysAnswer {
        dry_run: false,
        items: keys.into_iter().map(KeyView::from).collect(),
        distribution: distribution.into(),
    }))
}

#[utoipa::path(post, path = "/v1/keys/bulk-edit", request_body = BulkEdit, params(DryRun),
    responses((status = 200, body = KeysAnswer), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn bulk_edit(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<DryRun>,
    body: Json<BulkEdit>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let edit = edit_of(body.valid_to, body.description, body.customer_id)?;
    let ids = body.ids;
    let dry_run = query.flag()?;
    let (keys, distribution) = state
        .usecases
        .edit_keys(caller.0, ids, edit, dry_run)
        .await?;
    Ok(HttpResponse::Ok().json(KeysAnswer {
        dry_run,
        items: keys.into_iter().map(KeyView::from).collect(),
        distribution: distribution.into(),
    }))
}

#[utoipa::path(post, path = "/v1/keys/bulk-delete", request_body = BulkDelete, params(DryRun),
    responses((status = 200, body = KeysAnswer), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn bulk_delete(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<DryRun>,
    body: Json<BulkDelete>,
) -> Result<HttpResponse, ApiError> {
    let ids = body.into_inner().ids;
    let dry_run = query.flag()?;
    let (keys, distribution) = state.usecases.delete_keys(caller.0, ids, dry_run).await?;
    Ok(HttpResponse::Ok().json(KeysAnswer {
        dry_run,
        items: keys.into_iter().map(KeyView::from).collect(),
        distribution: distribution.into(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
    pub account_id: Option<String>,
}

#[utoipa::path(get, path = "/v1/assets/{x}/access-events", params(EventQuery),
    responses((status = 200, description = "what the unit reported, oldest first"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn access_events(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<EventQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let seen = visible_asset(&state, &caller, query.account_id.as_deref(), &path)?;
    seen.require_owned("read the access events of")?;
    let from = query_time("from", query.from.as_deref(), Timestamp(0))?;
    let to = query_time("to", query.to.as_deref(), Timestamp(u64::MAX))?;
    // A cursor continues the events of the asset it was given for, by `ts:seq`.
    let list = format!("access-events {}", path.as_str());
    let cursor = storage::paging::after(&list, query.cursor.as_deref(), |key| {
        let (ts, seq) = key.split_once(':')?;
        Some((ts.parse().ok()?, seq.parse().ok()?))
    })?;
    let page = storage::read::access_events(
        &state.store.begin_read()?,
        seen.asset.key,
        (from, to),
        cursor,
        limit(query.limit.as_deref())?,
    )?;
    let page = storage::paging::with_cursor(&list, page);
    let items: Vec<_> = page
        .items
        .iter()
        .map(|event| event.to_json(&seen.asset.id))
        .collect();
    let mut answer = serde_json::json!({ "items": items });
    let mut response = super::link::ok_page(&request, page.next_cursor.as_deref());
    if let Some(cursor) = page.next_cursor {
        answer["next_cursor"] = cursor.into();
    }
    Ok(response.json(answer))
}
