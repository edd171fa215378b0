//! The client certificates an account's admin sees and revokes: its integration
//! certificates and its units' (`storage::certificates` holds the rules). A revoked
//! serial is refused at every later handshake and its live sessions are closed before the
//! answer.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use storage::model::{CertificateKind, CertificateRecord};
use storage::{AccountId, DeviceId, OpError};
use utoipa::ToSchema;

use super::auth::Caller;
use super::dto::{page_by, PageQuery};
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn account_of(raw: &str) -> Result<AccountId, OpError> {
    AccountId::parse(raw).map_err(|_| OpError::not_found(format!("account {raw}")))
}

#[utoipa::path(get, path = "/v1/accounts/{a}/certificates", params(PageQuery),
    responses((status = 200, body = CertificateList), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list_certificates(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: super::query::Query<PageQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let account = account_of(&path)?;
    let rtx = state.store.begin_read()?;
    let certs = storage::certificates::of_account(&rtx, &caller.0, &account)?;
    let page = page_by("certificates", certs, query.paging(), |cert| {
        cert.serial.clone()
    })?;
    Ok(
        super::link::ok_page(&request, page.next_cursor.as_deref()).json(CertificateList {
            items: page.items.into_iter().map(CertificateView::from).collect(),
            next_cursor: page.next_cursor,
        }),
    )
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
    let cert = state
        .usecases
        .revoke_certificate(caller.0, account, serial)
        .await?;
    Ok(HttpResponse::Ok().json(CertificateView::from(cert)))
}

/// Revokes a subject's certificates by issue instant, recorded or not.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeIssuedBefore {
    /// The device id (a unit of the account) or the account id (its integrations).
    pub subject: String,
    /// RFC 3339; every certificate of the subject issued before it is refused.
    pub issued_before: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectRevocationView {
    pub subject: String,
    /// RFC 3339: the rule in force (the latest instant ever given for this subject).
    pub issued_before: String,
    /// Recorded certificates this call marked revoked; unrecorded ones (issued before the
    /// gateway recorded serials) are refused by the rule alone.
    pub revoked_serials: Vec<String>,
}

/// Certificates issued before the gateway recorded them have no serial on file: this
/// revokes by subject and issue instant instead. The subject's live session is closed
/// before the answer (a unit holding a newer certificate reconnects with it).
#[utoipa::path(post, path = "/v1/accounts/{a}/certificates/revoke-issued-before", request_body = RevokeIssuedBefore,
    responses((status = 200, body = SubjectRevocationView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn revoke_issued_before(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: super::body::Json<RevokeIssuedBefore>,
) -> Result<HttpResponse, ApiError> {
    let account = account_of(&path)?;
    let body = body.into_inner();
    let before = storage::time::Timestamp::parse_rfc3339(&body.issued_before)
        .ok_or_else(|| OpError::invalid("issued_before", "must be an RFC 3339 time"))?;
    let done = state
        .usecases
        .revoke_issued_before(caller.0, account, body.subject, before)
        .await?;
    Ok(HttpResponse::Ok().json(SubjectRevocationView {
        subject: done.tenant,
        issued_before: done.issued_before.to_rfc3339(),
        revoked_serials: done.recorded,
    }))
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitCertRequest {
    /// A PEM CSR; when given the unit keeps its private key and none is returned.
    pub csr_pem: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitCert {
    pub device_id: String,
    /// The new certificate's serial (lowercase hex), as the certificate list shows it.
    pub serial: String,
    /// RFC 3339.
    pub not_after: String,
    pub ca_pem: String,
    pub cert_pem: String,
    /// Shown this once; absent when a CSR was given.
    pub key_pem: Option<String>,
}

/// Unit `id`'s client certificate: `csr_pem` signed, or a key pair made here (its key then
/// in the answer). Signing is pure CPU and touches no state, so callers sign before their
/// use case decides; a certificate for a refused call is simply never handed out.
///
/// # Errors
/// 422 for a CSR that does not parse or is not for `id`; 500 when the CA cannot sign.
pub(super) fn unit_certificate_for(
    state: &AppState,
    id: &DeviceId,
    csr_pem: Option<&str>,
) -> Result<crate::pki::IssuedCert, ApiError> {
    match csr_pem {
        Some(csr) => Ok(state
            .ca
            .sign_device_csr(id.as_str(), csr, state.device_cert_validity)?),
        None => state
            .ca
            .issue_device(id.as_str(), state.device_cert_validity)
            .map_err(|err| ApiError::Internal(err.to_string())),
    }
}

/// A new client certificate for a registered unit: after its certificate was revoked, or
/// to rotate its key. Its other certificates stay as they are (revoking is its own
/// action); the new serial is recorded, so it can be revoked in turn.
#[utoipa::path(post, path = "/v1/devices/{d}/certificate", request_body = UnitCertRequest,
    responses((status = 201, body = UnitCert), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn unit_certificate(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: super::body::Json<UnitCertRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = DeviceId::parse(&path).map_err(|_| OpError::not_found(format!("device {path}")))?;
    let issued = unit_certificate_for(&state, &id, body.csr_pem.as_deref())?;
    let record = issued.record(id.as_str(), CertificateKind::Unit, state.clock.now());
    let (serial, not_after) = (record.serial.clone(), record.not_after);
    state
        .usecases
        .issue_unit_certificate(caller.0, id.clone(), record)
        .await?;
    Ok(HttpResponse::Created().json(UnitCert {
        device_id: id.to_string(),
        serial,
        not_after: not_after.to_rfc3339(),
        ca_pem: state.ca.ca_pem().to_owned(),
        cert_pem: issued.cert_pem,
        key_pem: issued.key_pem,
    }))
}
