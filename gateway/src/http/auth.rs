//! Who is calling: the `Caller` extractor resolves `Authorization: Bearer <token>`, or
//! else the console's session cookie, to a principal with one or two indexed reads. No
//! valid credential, no handler: 401 before any rule runs.
//!
//! A change (any method but GET, HEAD and OPTIONS) authenticated by the cookie must also
//! carry the session's CSRF token in `X-CSRF-Token`: a browser attaches cookies to requests
//! other sites make, never that header (SameSite=Strict already keeps cross-site requests
//! cookie-less in current browsers; the token also covers older ones and same-site
//! subdomains). A bearer token needs no such check: no browser sends it by itself.

use std::future::{ready, Ready};
use std::net::IpAddr;
use std::time::Instant;

use actix_web::http::Method;
use actix_web::{web, FromRequest, HttpRequest};
use storage::model::Principal;
use storage::sign_in::Credential;

use super::problem::ApiError;
use super::AppState;

/// The console's session cookie (HttpOnly, SameSite=Strict; `Secure` over HTTPS).
pub const SESSION_COOKIE: &str = "fleetgate_session";
/// The header a cookie-authenticated change carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, Clone)]
pub struct Caller(
    pub Principal,
    /// What the request came with: a live stream checks it again after every change (a
    /// rotated token or an ended session ends the stream).
    pub Credential,
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
        .and_then(|value| value.to_str().ok());
    let Some(header) = header else {
        return from_session(req, state);
    };
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
    Ok(Caller(principal, Credential::Token(token_hash)))
}

/// The console's cookie, checked like a token, plus the CSRF token for a change. An
/// unknown or expired session is not counted as a failed authentication: a browser sends
/// its stale cookie in good faith, and a 256-bit secret cannot be guessed anyway.
fn from_session(req: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
    let cookie = req.cookie(SESSION_COOKIE).ok_or(ApiError::Unauthorized)?;
    let credential = Credential::Session(storage::token::hash(cookie.value()));
    let rtx = state.store.begin_read()?;
    let Some((principal, Some(_))) =
        storage::sign_in::authenticate(&rtx, &credential, state.clock.now())?
    else {
        return Err(ApiError::Unauthorized);
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let expected = storage::sign_in::csrf_token(cookie.value());
        let sent = req
            .headers()
            .get(CSRF_HEADER)
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(sent, expected.as_bytes())) {
            return Err(ApiError::CsrfRejected(
                "a change made with the console's session cookie must carry the session's \
                 CSRF token in the X-CSRF-Token header"
                    .into(),
            ));
        }
    }
    state.last_used.note(&principal.id, state.clock.now());
    Ok(Caller(principal, credential))
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
