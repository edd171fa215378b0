//! Live streams as server-sent events. The handler only subscribes at the account's
//! `AccountActor`; what reaches the stream was decided by the `DeviceActor`s.

use std::convert::Infallible;

use actix_web::{web, HttpResponse};
use actors::account::Subscribe;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};

use super::auth::Caller;
use super::dto::AccountQuery;
use super::fleet::{account_param, visible_asset};
use super::problem::{ApiError, Problem};
use super::AppState;

/// Events coalesced into one HTTP chunk at most.
const MAX_EVENTS_PER_CHUNK: usize = 512;

async fn open(
    state: &AppState,
    account: storage::AccountId,
    only: Option<storage::AssetId>,
) -> Result<HttpResponse, ApiError> {
    let receiver = state
        .directory
        .account(&account)
        .send(Subscribe { only })
        .await
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    // The first frame tells the client the subscription is in place.
    let opened =
        stream::once(async { Ok::<_, Infallible>(Bytes::from_static(b": subscribed\n\n")) });
    // Under load many events wait at once: sending them as one chunk costs one write
    // instead of one per event, which is what lets one stream keep up with the fleet.
    let events = stream::unfold(receiver, |mut receiver| async move {
        let first = receiver.recv().await?;
        let mut chunk = first.to_sse().to_vec();
        for _ in 1..MAX_EVENTS_PER_CHUNK {
            match receiver.try_recv() {
                Ok(event) => chunk.extend_from_slice(&event.to_sse()),
                Err(_) => break,
            }
        }
        Some((Ok::<_, Infallible>(Bytes::from(chunk)), receiver))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(opened.chain(events)))
}

#[utoipa::path(get, path = "/v1/stream", params(AccountQuery),
    responses((status = 200, description = "text/event-stream of `event: point`"), (status = 404, body = Problem)))]
pub async fn account_stream(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let account = account_param(&caller, query.account_id.as_deref())?;
    storage::read::require_view(&state.store.begin_read()?, &caller.0, &account)?;
    open(&state, account, None).await
}

#[utoipa::path(get, path = "/v1/assets/{x}/stream", params(AccountQuery),
    responses((status = 200, description = "text/event-stream of `event: point`"), (status = 404, body = Problem)))]
pub async fn asset_stream(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let account = account_param(&caller, query.account_id.as_deref())?;
    let seen = visible_asset(&state, &caller, query.account_id.as_deref(), &path)?;
    // The stream lives at the viewing account, which receives the points under its id.
    open(&state, account, Some(seen.asset.id)).await
}
