//! Errors at the HTTP edge: every refusal becomes `application/problem+json` (RFC 9457)
//! whose `detail` names the field or the rule. This is the one place errors map to status
//! codes. A refusal by a rule (403) carries the rule's own problem `type` URI
//! ([`storage::Rule::type_uri`]); every other problem is `about:blank` (DESIGN 5, error
//! conventions).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use storage::{OpError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid bearer token or console session is required")]
    Unauthorized,
    /// A sign-in with a wrong user id, password or token (401), without saying which.
    #[error("the user id and password, or the token, are not valid")]
    SignInRefused,
    /// A change authenticated by the console's cookie without its CSRF token (403).
    #[error("{0}")]
    CsrfRejected(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A per-principal cap is reached, or a source failed to authenticate too often: 429
    /// with `Retry-After`, s (RFC 9110 §10.2.3).
    #[error("{detail}")]
    Throttled { detail: String, retry_after_s: u64 },
    /// The request's body did not arrive in time (408, RFC 9110 §15.5.9; see
    /// `http::body_deadline`).
    #[error("{0}")]
    RequestTimeout(String),
    /// A gateway-wide cap is reached (503).
    #[error("{0}")]
    Unavailable(String),
    /// A path of the route table asked with a method it does not have (405, with the
    /// methods it has in `Allow`: RFC 9110 §15.5.6).
    #[error("this path answers {allow} only")]
    MethodNotAllowed { allow: String },
    #[error(transparent)]
    Op(#[from] OpError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::Op(OpError::Store(err))
    }
}

/// A refused CSR is the caller's (422 naming `csr_pem`); a failure to issue is ours (500).
impl From<crate::pki::CsrError> for ApiError {
    fn from(err: crate::pki::CsrError) -> Self {
        match err {
            crate::pki::CsrError::Invalid(_) => OpError::invalid("csr_pem", err.to_string()).into(),
            crate::pki::CsrError::Issue(_) => ApiError::Internal(err.to_string()),
        }
    }
}

/// The `detail` of a refusal while the store cannot write (disk full, an I/O error): it
/// names the store and says the gateway recovers by itself.
pub const STORE_UNAVAILABLE: &str =
    "the store cannot write (disk full or an I/O error) and is being \
     reopened; retry once GET /healthz answers 200";

/// The problem document. `field` is an extension member for validation errors.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// The rule's URI for a refusal by a rule, else `about:blank`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::SignInRefused => StatusCode::UNAUTHORIZED,
            ApiError::CsrfRejected(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Op(OpError::NotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::Op(OpError::Forbidden(_)) => StatusCode::FORBIDDEN,
            ApiError::Op(OpError::Invalid { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Op(OpError::Conflict(_)) => StatusCode::CONFLICT,
            ApiError::Op(err) if err.is_io_failure() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Op(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let field = match self {
            ApiError::Op(OpError::Invalid { field, .. }) => Some(field.clone()),
            _ => None,
        };
        let kind = match self {
            ApiError::Op(OpError::Forbidden(rule)) => rule.type_uri(),
            _ => "about:blank".to_owned(),
        };
        let detail = match self {
            ApiError::Op(err) if err.is_io_failure() => STORE_UNAVAILABLE.to_owned(),
            // Do not leak storage internals to clients; the log has them.
            ApiError::Op(OpError::Store(_)) | ApiError::Internal(_) => {
                "the gateway could not complete the request; see its log".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let ApiError::MethodNotAllowed { allow } = self {
            response.insert_header(("Allow", allow.as_str()));
        }
        if let ApiError::Throttled { retry_after_s, .. } = self {
            response.insert_header(("Retry-After", retry_after_s.to_string()));
        }
        if matches!(self, ApiError::Op(err) if err.is_io_failure()) {
            // The store writer's longest wait between two reopens.
            let retry_after_s = actors::writer::LAST_RETRY.as_secs();
            response.insert_header(("Retry-After", retry_after_s.to_string()));
        }
        response
            .content_type("application/problem+json")
            .json(Problem {
                kind,
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                status: status.as_u16(),
                detail,
                field,
            })
    }
}

/// Body errors: malformed JSON is 400, a body that parses but breaks a field rule 422.
pub fn json_error(err: actix_web::error::JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &err {
        E::ContentType => {
            ApiError::UnsupportedMediaType("the body must be application/json".into())
        }
        E::OverflowKnownLength { .. } | E::Overflow { .. } => {
            ApiError::PayloadTooLarge(format!("body: {err}"))
        }
        E::Payload(actix_web::error::PayloadError::Io(io))
            if io.kind() == std::io::ErrorKind::TimedOut =>
        {
            ApiError::RequestTimeout(format!("body: {io}"))
        }
        // A body's fields are read by `fields::from_body`, which names them by their path.
        E::Deserialize(inner) if inner.is_data() => {
            ApiError::Op(OpError::invalid("body", inner.to_string()))
        }
        _ => ApiError::BadRequest(format!("body is not valid JSON: {err}")),
    };
    api.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn problem_of(err: ApiError) -> serde_json::Value {
        let body = actix_web::body::to_bytes(err.error_response().into_body())
            .await
            .expect("body");
        serde_json::from_slice(&body).expect("problem JSON")
    }

    #[actix_rt::test]
    async fn a_rule_refusal_carries_the_rule_uri_and_sentence() {
        let rule = storage::Rule::ManageFleet {
            role: storage::model::Role::Viewer,
        };
        let problem = problem_of(OpError::Forbidden(rule.clone()).into()).await;
        assert_eq!(problem["status"], 403);
        assert_eq!(problem["type"], rule.type_uri());
        assert_eq!(problem["detail"], rule.sentence());
        assert!(rule.sentence().starts_with("rule 1: "));
        let other = problem_of(OpError::not_found("asset ex1").into()).await;
        assert_eq!(other["type"], "about:blank");
    }
}
