//! Live streams as server-sent events. The handler only subscribes at the account's
//! `AccountActor`; what reaches the stream was decided by the `DeviceActor`s. A client
//! that resumes (`Last-Event-ID`) is first replayed what it missed (see [`super::resume`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use actors::account::Subscribe;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};

use super::auth::Caller;
use super::dto::StreamQuery;
use super::fleet::{account_param, visible_asset};
use super::problem::{ApiError, Problem};
use super::resume;
use super::AppState;

/// Events coalesced into one HTTP chunk at most.
const MAX_EVENTS_PER_CHUNK: usize = 512;

/// Caps on open live streams, gateway-wide and per principal: every stream holds a file
/// descriptor, and units and the API must keep theirs (a viewer opening a thousand
/// streams once locked every unit out).
#[derive(Debug)]
pub struct StreamCaps {
    global: usize,
    per_principal: usize,
    /// Events buffered per stream before a slow reader drops some (and hears of the gap).
    pub buffer_events: usize,
    open: Mutex<(usize, HashMap<storage::PrincipalId, usize>)>,
}

/// One open stream's place under the caps; dropping it (the stream ends) frees it.
#[derive(Debug)]
pub struct StreamSlot {
    caps: Arc<StreamCaps>,
    principal: storage::PrincipalId,
}

impl StreamCaps {
    pub fn new(global: usize, per_principal: usize, buffer_events: usize) -> StreamCaps {
        StreamCaps {
            global,
            per_principal,
            buffer_events,
            open: Mutex::new((0, HashMap::new())),
        }
    }

    /// A slot for one more stream of `principal`: 429 past its own cap, 503 past the
    /// gateway's.
    pub fn take(
        caps: &Arc<StreamCaps>,
        principal: &storage::PrincipalId,
    ) -> Result<StreamSlot, ApiError> {
        let mut open = caps.open.lock().unwrap_or_else(|p| p.into_inner());
        let mine = open.1.get(principal).copied().unwrap_or(0);
        // Retry-After: a stream whose client went away frees its slot at the next keep-alive
        // it fails to write (RFC 9110 §10.2.3; design 5.2, 429 and 503 carry it).
        let retry_after_s = 2 * actors::account::KEEP_ALIVE.as_secs();
        if mine >= caps.per_principal {
            return Err(ApiError::Throttled {
                detail: format!(
                    "at most {} live streams per principal are open at once",
                    caps.per_principal
                ),
                retry_after_s,
            });
        }
        if open.0 >= caps.global {
            return Err(ApiError::Unavailable(format!(
                "the gateway serves at most {} live streams at once; try again later",
                caps.global
            )));
        }
        open.0 += 1;
        *open.1.entry(principal.clone()).or_default() += 1;
        Ok(StreamSlot {
            caps: caps.clone(),
            principal: principal.clone(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock().unwrap_or_else(|p| p.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(mine) = open.1.get_mut(&self.principal) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                open.1.remove(&self.principal);
            }
        }
    }
}

/// What a stream's principal relied on when it opened: its token or console session, and the account (and
/// asset) it was allowed to see. Checked again from the store after every change; the
/// stream ends when the answer turns to no (rule 4's revoke and expiry, a rotated token,
/// a lost role, a removed grant of the one asset it shows).
struct Authority {
    store: storage::Store,
    clock: Arc<dyn storage::time::Clock>,
    credential: storage::sign_in::Credential,
    account: storage::AccountId,
    /// For an asset's stream, the asset id as the caller asked for it.
    asset: Option<storage::AssetId>,
}

impl Authority {
    /// Fails closed: a store that cannot answer ends the stream (the client reconnects
    /// and is checked like any request).
    fn still_allowed(&self) -> bool {
        let now = self.clock.now();
        let check = || -> Result<bool, storage::OpError> {
            let rtx = self.store.begin_read()?;
            let Some((principal, _)) = storage::sign_in::authenticate(&rtx, &self.credential, now)?
            else {
                return Ok(false);
            };
            Ok(match &self.asset {
                None => storage::read::require_view(&rtx, &principal, &self.account).is_ok(),
                Some(asset) => {
                    storage::visibility::resolve(&rtx, &principal, &self.account, asset, now)
                        .is_ok()
                }
            })
        };
        check().unwrap_or(false)
    }
}

async fn open(
    state: &AppState,
    caller: &Caller,
    account: storage::AccountId,
    only: Option<(storage::AssetId, storage::AssetId)>,
    resume_after: Option<storage::arrivals::ArrivalId>,
) -> Result<HttpResponse, ApiError> {
    let slot = StreamCaps::take(&state.streams, &caller.0.id)?;
    let (asked, shown) = only.unzip();
    let authority = Authority {
        store: state.store.clone(),
        clock: state.clock.clone(),
        credential: caller.1,
        account: account.clone(),
        asset: asked.clone(),
    };
    let subscribe = Subscribe {
        only: shown,
        allowed: Box::new(move || authority.still_allowed()),
        buffer: state.streams.buffer_events,
    };
    let receiver = state
        .directory
        .account(&account)
        .send(subscribe)
        .await
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    // Subscribed first: live events buffer while the replay is read.
    let prelude = match resume_after {
        Some(last) => resume::prelude(state, caller, &account, asked.as_ref(), last).await?,
        None => resume::Prelude::default(),
    };
    let through = prelude.through;
    // The first frame tells the client the subscription is in place.
    let opened = stream::once(async { Bytes::from_static(b": subscribed\n\n") })
        .chain(stream::iter(prelude.chunks))
        .map(Ok::<_, Infallible>);
    // Under load many events wait at once: sending them as one chunk costs one write
    // instead of one per event, which is what lets one stream keep up with the fleet.
    // The slot travels with the stream and is freed when the client goes away.
    let events = stream::unfold((receiver, slot), move |(mut receiver, slot)| async move {
        let mut chunk = Vec::new();
        while chunk.is_empty() {
            let first = receiver.recv().await?;
            if resume::after_replay(&first, through) {
                chunk.extend_from_slice(&first.to_sse());
            }
        }
        for _ in 1..MAX_EVENTS_PER_CHUNK {
            match receiver.try_recv() {
                Ok(event) if resume::after_replay(&event, through) => {
                    chunk.extend_from_slice(&event.to_sse())
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Some((Ok::<_, Infallible>(Bytes::from(chunk)), (receiver, slot)))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(opened.chain(events)))
}

#[utoipa::path(get, path = "/v1/stream", params(StreamQuery),
    responses((status = 200, description = "text/event-stream of `event: point` and (the owner's) `event: access`, each with its arrival `id:`; `event: gap` when a slow reader dropped events; `event: reset` when `Last-Event-ID` cannot be resumed from"), (status = 404, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem), (status = 503, body = Problem)))]
pub async fn account_stream(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    query: super::query::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let account = account_param(&caller, query.account_id.as_deref())?;
    let last = resume::last_event_id(request.headers(), query.last_event_id.as_deref())?;
    storage::read::require_view(&state.store.begin_read()?, &caller.0, &account)?;
    open(&state, &caller, account, None, last).await
}

#[utoipa::path(get, path = "/v1/assets/{x}/stream", params(StreamQuery),
    responses((status = 200, description = "text/event-stream of `event: point` and (the owner's) `event: access`, each with its arrival `id:`; `event: gap` when a slow reader dropped events; `event: reset` when `Last-Event-ID` cannot be resumed from"), (status = 404, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem), (status = 503, body = Problem)))]
pub async fn asset_stream(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    query: super::query::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let account = account_param(&caller, query.account_id.as_deref())?;
    let last = resume::last_event_id(request.headers(), query.last_event_id.as_deref())?;
    let seen = visible_asset(&state, &caller, query.account_id.as_deref(), &path)?;
    let asked = storage::AssetId::parse(&path)
        .map_err(|_| storage::OpError::not_found(format!("asset {path}")))?;
    // The stream lives at the viewing account, which receives the points under its id.
    open(&state, &caller, account, Some((asked, seen.asset.id)), last).await
}
