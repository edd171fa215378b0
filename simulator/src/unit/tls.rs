//! Builds the rustls client configuration for a unit's mutual-TLS connection from the PEM
//! text `POST /v1/devices` returns.
//!
//! We build the `ClientConfig` ourselves instead of handing PEM to rumqttc's
//! `TlsConfiguration::Simple`, because rumqttc then calls `ClientConfig::builder()`, which
//! panics when more than one rustls crypto provider is compiled in (reqwest brings `ring`,
//! rumqttc brings `aws-lc-rs`) and none is installed process-wide. Naming the provider here
//! avoids depending on what some other crate in the process did first.

use std::sync::Arc;

use rumqttc::tokio_rustls::rustls::{
    self,
    crypto::CryptoProvider,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
};

use super::UnitError;

/// A client configuration that trusts only `ca_pem` and presents `cert_pem`/`key_pem`
/// (none when both are empty).
pub(crate) fn client_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<rustls::ClientConfig, UnitError> {
    let tls_error =
        |what: &str, error: &dyn std::fmt::Display| UnitError::Tls(format!("{what}: {error}"));

    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let certificate = certificate.map_err(|error| tls_error("CA PEM", &error))?;
        roots
            .add(certificate)
            .map_err(|error| tls_error("CA certificate", &error))?;
    }
    if roots.is_empty() {
        return Err(UnitError::Tls("CA PEM holds no certificate".to_owned()));
    }

    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| tls_error("protocol versions", &error))?
        .with_root_certificates(roots);
    // No certificate and no key: a client that presents none, to check the broker's
    // refusal of anonymous TLS clients.
    if cert_pem.trim().is_empty() && key_pem.trim().is_empty() {
        return Ok(builder.with_no_client_auth());
    }

    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| tls_error("client certificate PEM", &error))?;
    if chain.is_empty() {
        return Err(UnitError::Tls(
            "client certificate PEM holds no certificate".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|error| tls_error("client key PEM", &error))?;

    builder
        .with_client_auth_cert(chain, key)
        .map_err(|error| tls_error("client certificate", &error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_pem_is_an_error_not_a_panic() {
        let error = client_config("not pem", "not pem", "not pem").expect_err("must fail");
        assert!(matches!(error, UnitError::Tls(_)));
    }
}
