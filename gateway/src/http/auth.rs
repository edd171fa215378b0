//! Who is calling: the `Caller` extractor resolves `Authorization: Bearer <token>` to a
//! principal with one indexed read. No valid token, no handler: 401 before any rule runs.

use std::future::{ready, Ready};

use actix_web::{web, FromRequest, HttpRequest};
use storage::model::Principal;

use super::problem::ApiError;
use super::AppState;

#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

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
    let token = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    let rtx = state.store.begin_read()?;
    let mut principal =
        storage::read::principal_for_token(&rtx, token)?.ok_or(ApiError::Unauthorized)?;
    // Support access is read fresh on every request: a revoke or an expiry takes effect
    // from the very next one.
    if matches!(principal.kind, storage::model::PrincipalKind::Staff { .. }) {
        principal.support = storage::support::active_for(&rtx, &principal.id, state.clock.now())?;
    }
    Ok(Caller(principal))
}
