//! Who is calling: the `Caller` extractor resolves `Authorization: Bearer <token>` to a
//! principal with one indexed read. No valid token, no handler: 401 before any rule runs.

use std::future::{ready, Ready};
use std::net::IpAddr;
use std::time::Instant;

use actix_web::{web, FromRequest, HttpRequest};
use storage::model::Principal;

use super::problem::ApiError;
use super::AppState;

#[derive(Debug, Clone)]
pub struct Caller(
    pub Principal,
    /// The SHA-256 of the bearer token the request came with: a live stream checks it
    /// again after every change (a rotated or revoked token ends the stream).
    pub [u8; 32],
);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(resolve(req))
    }
}

fn resolve(req: &HttpRequest) -> Result<Caller, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .ok_or(ApiError::Unauthorized)?;
    let source = admit_source(req, state)?;
    let token = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    let rtx = state.store.begin_read()?;
    let token_hash = storage::token::hash(token);
    let Some(principal) = storage::read::authenticate(&rtx, &token_hash, state.clock.now())? else {
        failed(state, source);
        return Err(ApiError::Unauthorized);
    };
    state.last_used.note(&principal.id, state.clock.now());
    Ok(Caller(principal, token_hash))
}

/// The address a request's failed authentications count under; 429 when that address
/// used up its failures for now.
pub(super) fn admit_source(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<IpAddr>, ApiError> {
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok());
    let peer = req.peer_addr().map(|addr| addr.ip());
    let source = super::auth_limit::source_of(peer, forwarded, &state.trusted_proxies);
    if let Some(source) = source {
        if let Err(wait) = state.auth_failures.check(source, Instant::now()) {
            state.metrics.auth_throttled.inc();
            let retry_after_s = wait.as_secs().max(1);
            return Err(ApiError::Throttled {
                detail: format!(
                    "too many failed authentications from {source}; retry in {retry_after_s} s"
                ),
                retry_after_s,
            });
        }
    }
    Ok(source)
}

/// Counts a failed authentication, against `source` when it is known.
pub(super) fn failed(state: &AppState, source: Option<IpAddr>) {
    state.metrics.auth_failures.inc();
    if let Some(source) = source {
        state.auth_failures.failed(source, Instant::now());
    }
}
