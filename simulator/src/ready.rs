//! Finds a running gateway the way DESIGN.md section 7 says tools should: wait for
//! `{data_dir}/ready.json`, which the gateway writes only once every listener is bound (so
//! port 0 works), and read the bootstrap `platform_admin` token beside it.
//!
//! The file may be observed half-written, so an unparsable `ready.json` is treated as "not
//! ready yet" until the timeout, not as an error. A `ready.json` left over from an earlier
//! run would be believed: whoever restarts a gateway on the same data dir removes it first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::unit::BrokerAddr;

pub const READY_FILE: &str = "ready.json";
pub const BOOTSTRAP_TOKEN_FILE: &str = "bootstrap-token";
/// How often to look for the file; short, because tests wait on it at every start.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadyError {
    #[error("{path} did not appear (or stayed invalid) within {timeout:?}{last_problem}")]
    Timeout {
        path: PathBuf,
        timeout: Duration,
        /// Why the last attempt failed, with a leading separator; empty if the file never
        /// appeared.
        last_problem: String,
    },
    #[error("invalid ready.json: {0}")]
    Invalid(String),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `ready.json` exactly as the gateway writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyFile {
    pub http: String,
    #[serde(default)]
    pub mqtt_tls: Option<String>,
    #[serde(default)]
    pub mqtt_plain: Option<String>,
}

/// Where a running gateway listens, and the bootstrap token if there is one.
#[derive(Clone, PartialEq, Eq)]
pub struct GatewayEndpoints {
    /// Base URL for `ApiClient`, e.g. `http://127.0.0.1:41234`.
    pub http_base: String,
    pub mqtt_tls: Option<BrokerAddr>,
    pub mqtt_plain: Option<BrokerAddr>,
    /// `None` when the data dir has no `bootstrap-token` file.
    pub bootstrap_token: Option<String>,
}

impl std::fmt::Debug for GatewayEndpoints {
    /// Leaves out the token: it is a platform administrator's credential.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GatewayEndpoints")
            .field("http_base", &self.http_base)
            .field("mqtt_tls", &self.mqtt_tls)
            .field("mqtt_plain", &self.mqtt_plain)
            .field(
                "bootstrap_token",
                &self.bootstrap_token.as_ref().map(|_| "…"),
            )
            .finish()
    }
}

/// Parses the contents of `ready.json` (without the token).
pub fn parse_ready(json: &str) -> Result<GatewayEndpoints, ReadyError> {
    let file: ReadyFile =
        serde_json::from_str(json).map_err(|error| ReadyError::Invalid(error.to_string()))?;
    if file.http.trim().is_empty() {
        return Err(ReadyError::Invalid("`http` is empty".to_owned()));
    }
    let http_base = if file.http.contains("://") {
        file.http.trim_end_matches('/').to_owned()
    } else {
        format!("http://{}", file.http)
    };
    let broker = |field: &str, value: Option<String>| -> Result<Option<BrokerAddr>, ReadyError> {
        value
            .map(|text| {
                text.parse()
                    .map_err(|error| ReadyError::Invalid(format!("`{field}`: {error}")))
            })
            .transpose()
    };
    Ok(GatewayEndpoints {
        http_base,
        mqtt_tls: broker("mqtt_tls", file.mqtt_tls)?,
        mqtt_plain: broker("mqtt_plain", file.mqtt_plain)?,
        bootstrap_token: None,
    })
}

/// Reads `{data_dir}/bootstrap-token`, trimmed; `None` if the file does not exist.
pub fn read_bootstrap_token(data_dir: &Path) -> Result<Option<String>, ReadyError> {
    let path = data_dir.join(BOOTSTRAP_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_owned()).filter(|token| !token.is_empty())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ReadyError::Io { path, source }),
    }
}

/// Waits until `{data_dir}/ready.json` exists and parses, then reads the bootstrap token.
pub async fn wait_ready(
    data_dir: &Path,
    timeout: Duration,
) -> Result<GatewayEndpoints, ReadyError> {
    let path = data_dir.join(READY_FILE);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_problem = String::new();
    loop {
        match tokio::fs::read_to_string(&path).await {
            Ok(text) => match parse_ready(&text) {
                Ok(mut endpoints) => {
                    endpoints.bootstrap_token = read_bootstrap_token(data_dir)?;
                    return Ok(endpoints);
                }
                Err(error) => last_problem = format!("; last problem: {error}"),
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ReadyError::Io { path, source }),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ReadyError::Timeout {
                path,
                timeout,
                last_problem,
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shape() {
        let endpoints = parse_ready(
            r#"{"http":"127.0.0.1:8080","mqtt_tls":"0.0.0.0:8883","mqtt_plain":"127.0.0.1:1883"}"#,
        )
        .expect("valid");
        assert_eq!(endpoints.http_base, "http://127.0.0.1:8080");
        assert_eq!(
            endpoints.mqtt_plain,
            Some(BrokerAddr {
                host: "127.0.0.1".into(),
                port: 1883
            })
        );
        assert_eq!(endpoints.mqtt_tls.map(|addr| addr.port), Some(8883));
    }

    #[test]
    fn null_and_missing_listeners_are_none() {
        let endpoints = parse_ready(r#"{"http":"127.0.0.1:1","mqtt_tls":null}"#).expect("valid");
        assert_eq!(endpoints.mqtt_tls, None);
        assert_eq!(endpoints.mqtt_plain, None);
    }

    #[test]
    fn http_with_scheme_is_kept() {
        let endpoints = parse_ready(r#"{"http":"http://[::1]:80/"}"#).expect("valid");
        assert_eq!(endpoints.http_base, "http://[::1]:80");
    }

    #[test]
    fn half_written_or_wrong_files_are_invalid() {
        assert!(matches!(
            parse_ready(r#"{"http":"127.0"#),
            Err(ReadyError::Invalid(_))
        ));
        assert!(matches!(
            parse_ready(r#"{"http":""}"#),
            Err(ReadyError::Invalid(_))
        ));
        assert!(matches!(
            parse_ready(r#"{"http":"127.0.0.1:1","mqtt_plain":"nope"}"#),
            Err(ReadyError::Invalid(_))
        ));
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "fleetgate-sim-{name}-{}-{}",
            std::process::id(),
            crate::telemetry::now_us()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[tokio::test]
    async fn reads_the_file_and_the_token() {
        let dir = temp_dir("ready");
        std::fs::write(dir.join(BOOTSTRAP_TOKEN_FILE), "secret\n").expect("token");
        std::fs::write(dir.join(READY_FILE), r#"{"http":"127.0.0.1:9"}"#).expect("ready");
        let endpoints = wait_ready(&dir, Duration::from_secs(5))
            .await
            .expect("ready");
        assert_eq!(endpoints.http_base, "http://127.0.0.1:9");
        assert_eq!(endpoints.bootstrap_token.as_deref(), Some("secret"));
        assert!(!format!("{endpoints:?}").contains("secret"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn times_out_when_the_file_never_comes() {
        let dir = temp_dir("never");
        let outcome = wait_ready(&dir, Duration::from_millis(60)).await;
        assert!(matches!(outcome, Err(ReadyError::Timeout { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
