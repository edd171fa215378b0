//! The gateway a scenario runs against and the credential it runs with. Every scenario that
//! drives units needs the same four things; keeping them in one type gives one place that
//! keeps the platform administrator's token out of logs and `{:?}` output.

use std::fmt;

use crate::api::{ApiClient, ApiError};
use crate::unit::BrokerAddr;

/// Where the gateway listens and who the scenario is there.
#[derive(Clone)]
pub struct Target {
    /// Gateway root URL, e.g. `http://127.0.0.1:8080`.
    pub http_base: String,
    pub mqtt: BrokerAddr,
    /// `Some(name)`: mutual TLS with each device's certificate, `name` matching the gateway
    /// certificate's SAN (e.g. `localhost`); `None`: the plain listener.
    pub tls_server_name: Option<String>,
    /// A `platform_admin` token: scenarios create their own accounts with it.
    pub admin_token: String,
}

impl Target {
    /// A target on the plain MQTT listener; set `tls_server_name` for TLS.
    pub fn new(
        http_base: impl Into<String>,
        mqtt: BrokerAddr,
        admin_token: impl Into<String>,
    ) -> Self {
        Self {
            http_base: http_base.into(),
            mqtt,
            tls_server_name: None,
            admin_token: admin_token.into(),
        }
    }

    /// An API client acting as the platform administrator.
    pub fn platform_admin(&self) -> Result<ApiClient, ApiError> {
        ApiClient::new(&self.http_base, self.admin_token.clone())
    }
}

impl fmt::Debug for Target {
    /// Leaves out the token: it is a platform administrator's credential.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Target")
            .field("http_base", &self.http_base)
            .field("mqtt", &self.mqtt)
            .field("tls_server_name", &self.tls_server_name)
            .finish_non_exhaustive()
    }
}

/// A target nothing answers on, for the tests of a config's own rules.
#[cfg(test)]
impl Target {
    pub(crate) fn unreachable() -> Self {
        let mqtt = "127.0.0.1:1883".parse().expect("a broker address");
        Self::new("http://127.0.0.1:1", mqtt, "token")
    }

    /// A target whose HTTP port was just closed: every call is refused at once.
    pub(crate) fn closed() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let mqtt = "127.0.0.1:1".parse().expect("a broker address");
        Self::new(format!("http://{address}"), mqtt, "token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_token() {
        let target = Target::new(
            "http://127.0.0.1:1",
            "127.0.0.1:2".parse().expect("addr"),
            "fgt_secret_token",
        );
        let shown = format!("{target:?}");
        assert!(shown.contains("127.0.0.1:1"), "{shown}");
        assert!(!shown.contains("fgt_secret_token"), "{shown}");
    }
}
