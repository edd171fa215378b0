//! The optional token `GET /metrics` asks for (`--metrics-token-file`): a scraper sends it
//! as `Authorization: Bearer <token>`. Without the flag `/metrics` stays open, as for a
//! scraper on a private network. The token is kept only as its SHA-256, and a presented
//! token is hashed and compared in constant time, so neither its length nor how much of it
//! matched shows in the answer's timing. A wrong token counts as a failed authentication
//! (the per-address limit of [`super::auth_limit`] applies).

use std::path::Path;

use actix_web::HttpRequest;
use anyhow::Context as _;
use subtle::ConstantTimeEq as _;

use super::problem::ApiError;
use super::{auth, AppState};

/// The token's SHA-256.
#[derive(Clone)]
pub struct MetricsToken([u8; 32]);

impl std::fmt::Debug for MetricsToken {
    /// Leaves the hash out: it would let an offline guesser check guesses.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

impl MetricsToken {
    /// Surrounding whitespace (a trailing newline) is not part of the token.
    /// `None` for an empty one.
    pub fn new(token: &str) -> Option<MetricsToken> {
        let token = token.trim();
        (!token.is_empty()).then(|| MetricsToken(storage::token::hash(token)))
    }

    /// Reads the token from a file (its whole content, trimmed); refuses a missing or empty
    /// file.
    pub fn read(path: &Path) -> anyhow::Result<MetricsToken> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--metrics-token-file {}", path.display()))?;
        MetricsToken::new(&text).with_context(|| {
            format!(
                "--metrics-token-file {} holds no token (it is empty)",
                path.display()
            )
        })
    }

    /// Whether an `Authorization` header value carries this token as a bearer token.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let presented = authorization
            .and_then(|header| header.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        let hash = storage::token::hash(presented);
        bool::from(hash.ct_eq(&self.0)) && !presented.is_empty()
    }
}

/// `Ok` when the gateway asks no token for `/metrics` or the request carries it; else 401
/// (counted as a failed authentication), or 429 for a source over its failures.
pub fn authorize(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(token) = &state.metrics_token else {
        return Ok(());
    };
    let source = auth::admit_source(req, state)?;
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    if token.admits(header) {
        return Ok(());
    }
    auth::failed(state, source);
    Err(ApiError::Unauthorized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bearer_token_itself_is_admitted() {
        let token = MetricsToken::new("s3cret-scrape\n").expect("a token");
        assert!(token.admits(Some("Bearer s3cret-scrape")));
        assert!(!token.admits(Some("Bearer s3cret-scrapE")));
        assert!(!token.admits(Some("Bearer s3cret")));
        assert!(!token.admits(Some("s3cret-scrape")), "no scheme");
        assert!(!token.admits(Some("Basic s3cret-scrape")));
        assert!(!token.admits(Some("Bearer ")));
        assert!(!token.admits(None));
        assert!(MetricsToken::new(" \n").is_none());
        assert_eq!(format!("{token:?}"), "MetricsToken(..)");
    }

    #[test]
    fn the_file_must_hold_a_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("metrics-token");
        std::fs::write(&file, "\n").expect("write");
        let err = MetricsToken::read(&file).expect_err("empty");
        assert!(err.to_string().contains("no token"), "{err}");
        std::fs::write(&file, "abc\n").expect("write");
        assert!(MetricsToken::read(&file)
            .expect("read")
            .admits(Some("Bearer abc")));
        assert!(MetricsToken::read(&dir.path().join("missing")).is_err());
    }
}
