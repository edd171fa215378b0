//! Mutual TLS for unit sessions: rustls 0.23 with the gateway CA as the only trust root, a
//! deny list of certificate serials the gateway changes at run time, and the identity a
//! presented certificate speaks for.
//!
//! The deny list is checked inside the client-certificate verifier, so a revoked
//! certificate fails the handshake itself (TLS alert `certificate_revoked`). Session
//! resumption is off: a resumed TLS 1.3 session would skip the verifier, and with it the
//! deny list.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

/// What the handshake refuses: serials (lowercase hex of the serial's bytes, as `pki`
/// records them), and per tenant every certificate issued before an instant (how
/// certificates issued before the CA recorded serials are revoked). Shared between the
/// verifier and the code that revokes.
#[derive(Debug, Clone, Default)]
pub struct DenyList {
    serials: Arc<RwLock<HashSet<String>>>,
    /// tenant -> issued-before instant, ms since the Unix epoch.
    issued_before: Arc<RwLock<HashMap<String, u64>>>,
}

impl DenyList {
    /// Refuses every certificate of `tenant` issued before `before_ms` (ms since the Unix
    /// epoch). The rule only moves later.
    pub fn deny_issued_before(&self, tenant: &str, before_ms: u64) {
        if let Ok(mut rules) = self.issued_before.write() {
            let at = rules.entry(tenant.to_owned()).or_insert(before_ms);
            *at = (*at).max(before_ms);
        }
    }

    /// Whether the handshake must refuse this certificate: its serial is denied, or its
    /// tenant has a rule it was issued before. A poisoned lock refuses (fail closed).
    pub fn refuses(&self, identity: &PeerIdentity) -> bool {
        self.is_denied(&identity.serial)
            || self
                .issued_before
                .read()
                .map(|rules| {
                    rules
                        .get(&identity.tenant)
                        .is_some_and(|before| identity.issued_at_ms < *before)
                })
                .unwrap_or(true)
    }

    pub fn deny(&self, serial: &str) {
        if let Ok(mut serials) = self.serials.write() {
            serials.insert(serial.to_ascii_lowercase());
        }
    }

    pub fn is_denied(&self, serial: &str) -> bool {
        self.serials
            .read()
            .map(|serials| serials.contains(serial))
            .unwrap_or(true)
    }

    pub fn len(&self) -> usize {
        self.serials.read().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a verified client certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The subject's first Organization: a device id or an account id.
    pub tenant: String,
    /// Lowercase hex of the serial's bytes.
    pub serial: String,
    /// When the CA issued it, ms since the Unix epoch: its notBefore plus the backdate the
    /// CA applies at issue ([`crate::pki::BACKDATE`]).
    pub issued_at_ms: u64,
}

/// Reads the identity from a DER certificate; `None` when it has no Organization.
pub fn identity_of(der: &[u8]) -> Option<PeerIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let tenant = cert
        .subject()
        .iter_organization()
        .next()
        .and_then(|o| o.as_str().ok())?
        .to_owned();
    let not_before_ms = u64::try_from(cert.validity().not_before.timestamp())
        .unwrap_or(0)
        .saturating_mul(1000);
    let backdate_ms = u64::try_from(crate::pki::BACKDATE.as_millis()).unwrap_or(u64::MAX);
    Some(PeerIdentity {
        tenant,
        // The spelling the CA recorded at issue, so the deny list matches it.
        serial: crate::pki::serial_hex(cert.raw_serial()),
        issued_at_ms: not_before_ms.saturating_add(backdate_ms),
    })
}

/// Wraps the web PKI verifier (chain to the gateway CA, validity, key usage) and adds the
/// deny list.
#[derive(Debug)]
struct DenyingVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    deny: DenyList,
}

impl ClientCertVerifier for DenyingVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        match identity_of(end_entity) {
            Some(identity) if self.deny.refuses(&identity) => Err(
                rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked),
            ),
            Some(_) => Ok(verified),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// PEM text of the trust root and of the server's certificate and key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// The HTTPS listener's rustls configuration: no client certificates (people sign in), the
/// chain and key from PEM text, ring as in [`server_config`].
pub fn https_config(cert_pem: &str, key_pem: &str) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("reading the HTTPS certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("reading the HTTPS key")?;
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("HTTPS certificate and key")
}

/// The rustls server configuration: client certificates required, chained to `ca_pem` and
/// not on `deny`.
pub fn server_config(files: &TlsFiles, deny: DenyList) -> anyhow::Result<rustls::ServerConfig> {
    // ring explicitly: the workspace also links aws-lc-rs (through the simulator's
    // clients), and with two providers present rustls will not pick one by itself.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(files.ca_pem.as_bytes()) {
        roots
            .add(cert.context("reading the CA certificate")?)
            .context("adding the CA")?;
    }
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("building the client verifier")?;
    let verifier = Arc::new(DenyingVerifier { inner, deny });
    let chain = CertificateDer::pem_slice_iter(files.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("reading the server certificate")?;
    let key = PrivateKeyDer::from_pem_slice(files.key_pem.as_bytes())
        .context("reading the server key")?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("server certificate and key")?;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}
