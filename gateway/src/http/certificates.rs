//! The client certificates an account's admin sees and revokes: its integration
//! certificates and its units' (`storage::certificates` holds the rules). A revoked
//! serial is refused at every later handshake and its live sessions are closed before the
//! answer.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use storage::model::{CertificateKind, CertificateRecord};
use storage::{AccountId, OpError};
use utoipa::ToSchema;

use super::auth::Caller;
use super::problem::{ApiError, Problem};
use super::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateView {
    /// Lowercase hex, no separators.
    pub serial: String,
    /// `unit` or `integration`.
    pub kind: &'static str,
    /// The device id or account id the certificate speaks for.
    pub tenant: String,
    pub subject: String,
    pub issuer: String,
    /// RFC 3339.
    pub issued_at: String,
    /// RFC 3339.
    pub not_after: String,
    /// RFC 3339, once revoked.
    pub revoked_at: Option<String>,
}

impl From<CertificateRecord> for CertificateView {
    fn from(cert: CertificateRecord) -> Self {
        CertificateView {
            serial: cert.serial,
            kind: match cert.kind {
                CertificateKind::Unit => "unit",
                CertificateKind::Integration => "integration",
            },
            tenant: cert.tenant,
            subject: cert.subject,
            issuer: cert.issuer,
            issued_at: cert.issued_at.to_rfc3339(),
            not_after: cert.not_after.to_rfc3339(),
            revoked_at: cert.revoked_at.map(|at| at.to_rfc3339()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateList {
    pub items: Vec<CertificateView>,
}

fn account_of(raw: &str) -> Result<AccountId, OpError> {
    AccountId::parse(raw).map_err(|_| OpError::not_found(format!("account {raw}")))
}

#[utoipa::path(get, path = "/v1/accounts/{a}/certificates",
    responses((status = 200, body = CertificateList), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list_certificates(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let account = account_of(&path)?;
    let rtx = state.store.begin_read()?;
    let certs = storage::certificates::of_account(&rtx, &caller.0, &account)?;
    let items = certs.into_iter().map(CertificateView::from).collect();
    Ok(HttpResponse::Ok().json(CertificateList { items }))
}

#[utoipa::path(post, path = "/v1/accounts/{a}/certificates/{serial}/revoke",
    responses((status = 200, body = CertificateView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_certificate(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (account, serial) = path.into_inner();
    let account = account_of(&account)?;
    let now = state.clock.now();
    // Commit and enforcement in one task: a caller that hangs up after the commit does not
    // leave the serial accepted (the deny list is also rebuilt from the store at start).
    let cert = super::completing(async move {
        let (cert, _) = state
            .writer
            .execute(move |tx| {
                storage::certificates::revoke_one(tx, &caller.0, &account, &serial, now)
            })
            .await?;
        state
            .transport
            .revoke(std::slice::from_ref(&cert.serial))
            .await;
        Ok(cert)
    })
    .await?;
    Ok(HttpResponse::Ok().json(CertificateView::from(cert)))
}
