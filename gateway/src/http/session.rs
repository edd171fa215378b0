//! Console sign-in over the API (`storage::sign_in` holds the rules): sign in with a
//! password or an API token for an HttpOnly session cookie, read the session, sign out,
//! set one's own password, and the one-time password invitations an admin gives a user.
//!
//! Failed sign-ins, wrong current passwords and unknown invitations count as failed
//! authentications of their source address, so they are throttled like wrong tokens
//! (`auth_limit`). A password sign-in for an unknown user still verifies against a fixed
//! hash, so the answer's timing does not tell which user ids exist.

use std::sync::LazyLock;

use actix_web::cookie::{time::Duration as CookieAge, Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use storage::model::Principal;
use storage::sign_in::{self, Credential, NewPassword, NewSession};
use storage::{AccountId, OpError};
use utoipa::{IntoParams, ToSchema};

use super::auth::{admit_source, failed, Caller, SESSION_COOKIE};
use super::body::Json;
use super::dto::MeView;
use super::problem::{ApiError, Problem};
use super::AppState;

/// `POST /v1/session`: either `token`, or `user_id` and `password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub user_id: Option<String>,
    pub password: Option<String>,
    /// An API token (the platform admin's first sign-in uses the bootstrap token).
    pub token: Option<String>,
}

/// A console session as the page sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub user: MeView,
    /// Send it back in `X-CSRF-Token` with every change made with the cookie.
    pub csrf_token: String,
    /// RFC 3339: the session ends then; sign in again.
    pub expires_at: String,
    /// False until the principal has a password (after a token sign-in: set one).
    pub password_set: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// At least 12 characters, at most 1,024 bytes.
    #[schema(min_length = 12)]
    pub password: String,
    /// Needed when the principal already has a password.
    pub current_password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationAccept {
    /// At least 12 characters, at most 1,024 bytes.
    #[schema(min_length = 12)]
    pub password: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InviteQuery {
    /// `true` also ends the user's current password and console sessions now.
    #[serde(default)]
    pub reset: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    /// Shown once; only its hash is kept.
    pub token: String,
    /// Where the console takes it: give the user `<console address><path>`.
    pub path: String,
    /// RFC 3339.
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationInfo {
    /// Sign in with this id and the password set through the invitation.
    pub user_id: String,
    pub name: String,
    /// RFC 3339.
    pub expires_at: String,
}

#[utoipa::path(post, path = "/v1/session", request_body = SignIn,
    responses((status = 200, body = SessionView, description = "signed in; `Set-Cookie: fleetgate_session` (HttpOnly, SameSite=Strict, Secure over HTTPS)"),
        (status = 401, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<SignIn>,
) -> Result<HttpResponse, ApiError> {
    let source = admit_source(&req, &state)?;
    let Some((principal, password_set)) = check_credentials(&state, body.into_inner()).await?
    else {
        failed(&state, source);
        return Err(ApiError::SignInRefused);
    };
    let session = state.usecases.start_session(principal.clone()).await?;
    let cookie = session_cookie(&req, &session);
    Ok(HttpResponse::Ok().cookie(cookie).json(SessionView {
        user: MeView::from(&principal),
        csrf_token: session.csrf_token,
        expires_at: session.expires_at.to_rfc3339(),
        password_set,
    }))
}

/// The principal the body's credentials name and whether it has a password, or `None`
/// when they are wrong.
async fn check_credentials(
    state: &AppState,
    body: SignIn,
) -> Result<Option<(Principal, bool)>, ApiError> {
    match body {
        SignIn {
            token: Some(token),
            user_id: None,
            password: None,
        } => {
            let rtx = state.store.begin_read()?;
            let hash = storage::token::hash(token.trim());
            let Some(principal) = storage::read::authenticate(&rtx, &hash, state.clock.now())?
            else {
                return Ok(None);
            };
            let password_set = sign_in::password_of(&rtx, &principal.id)?.is_some();
            Ok(Some((principal, password_set)))
        }
        SignIn {
            token: None,
            user_id: Some(user_id),
            password: Some(password),
        } => {
            let (principal, phc) = {
                let rtx = state.store.begin_read()?;
                match sign_in::enabled_principal(&rtx, user_id.trim())? {
                    Some(principal) => {
                        let phc = sign_in::password_of(&rtx, &principal.id)?;
                        (Some(principal), phc)
                    }
                    None => (None, None),
                }
            };
            // A principal that signs in with its password has one.
            let matches = verify(phc, password).await?;
            Ok(principal
                .filter(|_| matches)
                .map(|principal| (principal, true)))
        }
        _ => {
            Err(OpError::invalid("body", "give either `token`, or `user_id` and `password`").into())
        }
    }
}

#[utoipa::path(get, path = "/v1/session",
    responses((status = 200, body = SessionView), (status = 401, body = Problem), (status = 404, body = Problem, description = "the request came with a bearer token, not a console session")))]
pub async fn current(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let secret = session_secret(&req, &caller)?;
    let rtx = state.store.begin_read()?;
    let Some((principal, Some(session))) =
        sign_in::authenticate(&rtx, &caller.1, state.clock.now())?
    else {
        return Err(ApiError::Unauthorized);
    };
    let password_set = sign_in::password_of(&rtx, &principal.id)?.is_some();
    Ok(HttpResponse::Ok().json(SessionView {
        user: MeView::from(&principal),
        csrf_token: sign_in::csrf_token(&secret),
        expires_at: session.expires_at.to_rfc3339(),
        password_set,
    }))
}

#[utoipa::path(delete, path = "/v1/session",
    responses((status = 204, description = "signed out; the cookie is cleared and the session's live streams end"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn sign_out(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let Credential::Session(hash) = caller.1 else {
        return no_session();
    };
    state.usecases.end_session(hash).await?;
    let mut gone = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

#[utoipa::path(put, path = "/v1/session/password", request_body = PasswordChange,
    responses((status = 204, description = "the password is set"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn set_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let source = admit_source(&req, &state)?;
    let password = NewPassword::parse("password", body.password)?;
    let stored = sign_in::password_of(&state.store.begin_read()?, &caller.0.id)?;
    if let Some(phc) = &stored {
        let current = body
            .current_password
            .ok_or_else(|| OpError::invalid("current_password", "needed to change a password"))?;
        if !verify(Some(phc.clone()), current).await? {
            failed(&state, source);
            return Err(OpError::invalid("current_password", "is not the current password").into());
        }
    }
    let phc = hash(password).await?;
    state.usecases.set_password(caller.0, stored, phc).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/v1/accounts/{a}/users/{u}/password-invitation", params(InviteQuery),
    responses((status = 201, body = InvitationView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn invite(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: super::query::Query<InviteQuery>,
) -> Result<HttpResponse, ApiError> {
    let (account, user) = path.into_inner();
    let account =
        AccountId::parse(&account).map_err(|_| OpError::not_found(format!("account {account}")))?;
    let (token, expires_at) = state
        .usecases
        .invite_password(caller.0, account, user, query.reset)
        .await?;
    Ok(HttpResponse::Created().json(InvitationView {
        path: format!("/#/set-password/{token}"),
        token,
        expires_at: expires_at.to_rfc3339(),
    }))
}

#[utoipa::path(get, path = "/v1/password-invitations/{token}",
    responses((status = 200, body = InvitationInfo), (status = 404, body = Problem, description = "unknown, used or expired"), (status = 429, body = Problem)))]
pub async fn invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let source = admit_source(&req, &state)?;
    let hash = storage::token::hash(&path);
    let found = sign_in::invitation(&state.store.begin_read()?, &hash, state.clock.now())?;
    let Some((user, record)) = found else {
        failed(&state, source);
        return Err(OpError::not_found("invitation").into());
    };
    Ok(HttpResponse::Ok().json(InvitationInfo {
        user_id: user.id.to_string(),
        name: user.name,
        expires_at: record.expires_at.to_rfc3339(),
    }))
}

#[utoipa::path(post, path = "/v1/password-invitations/{token}", request_body = InvitationAccept,
    responses((status = 204, description = "the password is set; the invitation is used up"), (status = 404, body = Problem, description = "unknown, used or expired"), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn accept(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<InvitationAccept>,
) -> Result<HttpResponse, ApiError> {
    let source = admit_source(&req, &state)?;
    let password = NewPassword::parse("password", body.into_inner().password)?;
    let hash_of_token = storage::token::hash(&path);
    let known = sign_in::invitation(
        &state.store.begin_read()?,
        &hash_of_token,
        state.clock.now(),
    )?;
    if known.is_none() {
        failed(&state, source);
        return Err(OpError::not_found("invitation").into());
    }
    let phc = hash(password).await?;
    state.usecases.accept_invitation(hash_of_token, phc).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The session cookie: HttpOnly (no script reads it), SameSite=Strict (no other site's
/// request carries it), `Secure` when this listener is HTTPS, gone when the session ends.
fn session_cookie(req: &HttpRequest, session: &NewSession) -> Cookie<'static> {
    let lifetime_s = i64::try_from(sign_in::SESSION_TTL_MS / 1000).unwrap_or(i64::MAX);
    Cookie::build(SESSION_COOKIE, session.secret.clone())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(req.app_config().secure())
        .max_age(CookieAge::seconds(lifetime_s))
        .finish()
}

/// The cookie's secret when the caller came with a console session; 404 for a bearer
/// token, which has no session to read or end.
fn session_secret(req: &HttpRequest, caller: &Caller) -> Result<String, ApiError> {
    match (caller.1, req.cookie(SESSION_COOKIE)) {
        (Credential::Session(_), Some(cookie)) => Ok(cookie.value().to_owned()),
        _ => no_session(),
    }
}

fn no_session<T>() -> Result<T, ApiError> {
    Err(OpError::not_found("console session (this request came with a bearer token)").into())
}

/// A hash every unknown user's sign-in is verified against, so it takes as long as a known
/// user's.
static DECOY: LazyLock<String> = LazyLock::new(|| {
    let decoy = NewPassword::parse("password", "no user has this password".into())
        .expect("the decoy passes the rules");
    sign_in::hash_password(&decoy)
});

/// argon2 off the async threads (tens of ms each).
async fn verify(phc: Option<String>, candidate: String) -> Result<bool, ApiError> {
    web::block(move || {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| DECOY.clone());
        sign_in::verify_password(&phc, &candidate) && known
    })
    .await
    .map_err(|err| ApiError::Internal(format!("password check: {err}")))
}

async fn hash(password: NewPassword) -> Result<String, ApiError> {
    web::block(move || sign_in::hash_password(&password))
        .await
        .map_err(|err| ApiError::Internal(format!("password hash: {err}")))
}
