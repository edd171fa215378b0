//! The gateway's certificate authority: device identity for MQTT over TLS (DESIGN 4).
//!
//! The CA is created on first start in the data directory (key mode 0600) and reused
//! after. It issues the broker's server certificate (for configurable names) and one client
//! certificate per unit whose subject Organization is the device id: rumqttd's
//! `validate-tenant-prefix` takes the tenant from that field and confines the connection to
//! `/tenants/{id}/`. A CSR keeps the unit's key on the unit; its requested subject is
//! ignored, the gateway sets it.
//!
//! Every certificate gets a random positive 16-byte serial (RFC 5280 4.1.2.2), and an
//! issued client certificate says its serial, subject, issuer and expiry as read back from
//! the certificate itself, so what the store records is what a unit later presents.
//! [`serial_hex`] is the one spelling of a serial, for issuing and for reading a presented
//! certificate alike.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use storage::model::{CertificateKind, CertificateRecord};
use storage::time::Timestamp;
use time::OffsetDateTime;

pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";
pub const SERVER_CERT: &str = "server.pem";
pub const SERVER_KEY: &str = "server.key";
/// A CA outlives every certificate it signs.
const CA_VALIDITY: Duration = Duration::from_secs(20 * 365 * 24 * 3600);
/// Clock skew tolerated between the gateway and a unit at the start of a validity window:
/// a certificate's notBefore lies this far before its issue instant.
pub(crate) const BACKDATE: Duration = Duration::from_secs(3600);
/// Length of the random serial of every issued certificate, in bytes.
const SERIAL_BYTES: usize = 16;

/// A unit's (or an integration's) issued identity, and what the store records of it.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    pub cert_pem: String,
    /// Present only when the gateway generated the key (no CSR given).
    pub key_pem: Option<String>,
    /// The serial as [`serial_hex`] spells it (32 lowercase hex digits).
    pub serial: String,
    /// The subject distinguished name as x509-parser prints it, e.g. `O=unit1, CN=unit1`.
    pub subject: String,
    /// The issuer (the gateway CA) distinguished name, printed the same way.
    pub issuer: String,
    /// The end of the validity window (whole seconds, as the certificate holds it).
    pub not_after: Timestamp,
}

impl IssuedCert {
    /// What the store keeps of this certificate, issued at `issued_at` to `tenant` (its
    /// subject Organization: a device id or an account id).
    pub fn record(
        &self,
        tenant: &str,
        kind: CertificateKind,
        issued_at: Timestamp,
    ) -> CertificateRecord {
        CertificateRecord {
            serial: self.serial.clone(),
            tenant: tenant.to_owned(),
            kind,
            subject: self.subject.clone(),
            issuer: self.issuer.clone(),
            not_after: self.not_after,
            issued_at,
            revoked_at: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    #[error("csr_pem: not a valid PEM certificate signing request ({0})")]
    Invalid(String),
    /// The gateway failed to produce or read back the certificate: not the caller's fault.
    #[error("issuing the certificate failed: {0}")]
    Issue(String),
}

/// The one spelling of a certificate serial: lowercase hex of the serial's DER content
/// bytes (x509-parser's `raw_serial()`), no separators, e.g. `"5f01c2..."`. Used when
/// issuing and when reading a presented certificate, so the two can never differ.
pub fn serial_hex(der_serial_bytes: &[u8]) -> String {
    hex::encode(der_serial_bytes)
}

/// A fresh random serial: 16 bytes, top bit of the first byte cleared (a positive
/// INTEGER), first byte non-zero (so the DER encoding keeps all 16 bytes).
fn random_serial() -> SerialNumber {
    loop {
        let mut bytes: [u8; SERIAL_BYTES] = rand::random();
        bytes[0] &= 0x7f;
        if bytes[0] != 0 {
            return SerialNumber::from_slice(&bytes);
        }
    }
}

/// Reads back what the store records of a certificate the CA just signed.
fn describe(cert: &rcgen::Certificate, key_pem: Option<String>) -> Result<IssuedCert, CsrError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.der())
        .map_err(|err| CsrError::Issue(format!("reading back the certificate: {err}")))?;
    let not_after_secs = parsed.validity().not_after.timestamp();
    let not_after = u64::try_from(not_after_secs)
        .ok()
        .and_then(|secs| secs.checked_mul(1000))
        .ok_or_else(|| CsrError::Issue(format!("not_after {not_after_secs} s out of range")))?;
    Ok(IssuedCert {
        cert_pem: cert.pem(),
        key_pem,
        serial: serial_hex(parsed.raw_serial()),
        subject: parsed.subject().to_string(),
        issuer: parsed.issuer().to_string(),
        not_after: Timestamp(not_after),
    })
}

pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    dir: PathBuf,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn window(validity: Duration) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - BACKDATE, now + validity)
}

impl CertificateAuthority {
    /// Loads the CA from `dir`, or creates it there on first start.
    pub fn open_or_create(dir: &Path) -> anyhow::Result<CertificateAuthority> {
        let cert_path = dir.join(CA_CERT);
        let key_path = dir.join(CA_KEY);
        if cert_path.exists() && key_path.exists() {
            let ca_pem =
                std::fs::read_to_string(&cert_path).context("reading the CA certificate")?;
            let key_pem = std::fs::read_to_string(&key_path).context("reading the CA key")?;
            let key = KeyPair::from_pem(&key_pem).context("parsing the CA key")?;
            let issuer =
                Issuer::from_ca_cert_pem(&ca_pem, key).context("parsing the CA certificate")?;
            return Ok(CertificateAuthority {
                issuer,
                ca_pem,
                dir: dir.to_owned(),
            });
        }
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "Fleetgate device CA");
        name.push(DnType::OrganizationName, "Fleetgate");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        (params.not_before, params.not_after) = window(CA_VALIDITY);
        params.serial_number = Some(random_serial());
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        crate::write_private(&key_path, key.serialize_pem().as_bytes())?;
        std::fs::write(&cert_path, cert.pem()).context("writing the CA certificate")?;
        tracing::info!(dir = %dir.display(), "created the gateway CA");
        Ok(CertificateAuthority {
            issuer: Issuer::new(params, key),
            ca_pem: cert.pem(),
            dir: dir.to_owned(),
        })
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join(CA_CERT)
    }

    /// Issues the broker's certificate for `names` (DNS names or IP addresses) and writes it
    /// with its key; returns (cert path, key path). Reissued at every start, so a change of
    /// names takes effect on restart.
    pub fn issue_server(
        &self,
        names: &[String],
        validity: Duration,
    ) -> anyhow::Result<(PathBuf, PathBuf)> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        for name in names {
            let san = match name.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    name.clone()
                        .try_into()
                        .with_context(|| format!("server name {name:?}"))?,
                ),
            };
            params.subject_alt_names.push(san);
        }
        params
            .distinguished_name
            .push(DnType::CommonName, "Fleetgate MQTT broker");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        (params.not_before, params.not_after) = window(validity);
        params.serial_number = Some(random_serial());
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let cert_path = self.dir.join(SERVER_CERT);
        let key_path = self.dir.join(SERVER_KEY);
        std::fs::write(&cert_path, cert.pem())?;
        crate::write_private(&key_path, key.serialize_pem().as_bytes())?;
        Ok((cert_path, key_path))
    }

    fn device_params(device_id: &str, validity: Duration) -> anyhow::Result<CertificateParams> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut name = DistinguishedName::new();
        // The Organization is the MQTT tenant: the one field that confines the unit.
        name.push(DnType::OrganizationName, device_id);
        name.push(DnType::CommonName, device_id);
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        (params.not_before, params.not_after) = window(validity);
        params.serial_number = Some(random_serial());
        Ok(params)
    }

    /// A certificate and a fresh key for a unit (or an integration: O = account id).
    pub fn issue_device(&self, device_id: &str, validity: Duration) -> anyhow::Result<IssuedCert> {
        let key = KeyPair::generate()?;
        let cert = Self::device_params(device_id, validity)?.signed_by(&key, &self.issuer)?;
        Ok(describe(&cert, Some(key.serialize_pem()))?)
    }

    /// Signs a unit's CSR; the unit's key never leaves it. The subject is the gateway's
    /// choice (O = device id), never the CSR's.
    ///
    /// # Errors
    /// [`CsrError::Invalid`] for a CSR that does not parse or cannot be signed,
    /// [`CsrError::Issue`] when the gateway fails on its side.
    pub fn sign_device_csr(
        &self,
        device_id: &str,
        csr_pem: &str,
        validity: Duration,
    ) -> Result<IssuedCert, CsrError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|err| CsrError::Invalid(err.to_string()))?;
        csr.params = Self::device_params(device_id, validity)
            .map_err(|err| CsrError::Issue(err.to_string()))?;
        let cert = csr
            .signed_by(&self.issuer)
            .map_err(|err| CsrError::Invalid(err.to_string()))?;
        describe(&cert, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

    fn subject_org(cert_pem: &str) -> String {
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).expect("pem");
        let cert = pem.parse_x509().expect("x509");
        let org = cert
            .subject()
            .iter_organization()
            .next()
            .and_then(|o| o.as_str().ok())
            .unwrap_or_default()
            .to_owned();
        org
    }

    fn parsed_serial(cert_pem: &str) -> String {
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).expect("pem");
        let cert = pem.parse_x509().expect("x509");
        serial_hex(cert.raw_serial())
    }

    #[test]
    fn serial_hex_is_lowercase_hex_without_separators() {
        assert_eq!(serial_hex(&[0x00, 0x7f, 0xab, 0x05]), "007fab05");
        assert_eq!(serial_hex(&[]), "");
    }

    #[test]
    fn every_certificate_gets_its_own_random_positive_serial() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::open_or_create(dir.path()).expect("create");
        let first = ca.issue_device("unit1", YEAR).expect("first");
        let second = ca.issue_device("unit1", YEAR).expect("second");
        assert_ne!(first.serial, second.serial);
        for issued in [&first, &second] {
            assert_eq!(issued.serial.len(), 2 * SERIAL_BYTES, "{}", issued.serial);
            assert!(
                issued.serial.as_bytes()[0] < b'8',
                "positive: top bit clear"
            );
            assert_eq!(parsed_serial(&issued.cert_pem), issued.serial);
            assert_eq!(issued.subject, "O=unit1, CN=unit1");
            assert_eq!(issued.issuer, "CN=Fleetgate device CA, O=Fleetgate");
        }
        let (cert_path, _) = ca
            .issue_server(&["localhost".into()], YEAR)
            .expect("server");
        let server_pem = std::fs::read_to_string(cert_path).expect("server pem");
        let server_serial = parsed_serial(&server_pem);
        assert_eq!(server_serial.len(), 2 * SERIAL_BYTES);
        assert_ne!(server_serial, first.serial);
    }

    #[test]
    fn a_signed_csr_records_what_the_certificate_says() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::open_or_create(dir.path()).expect("create");
        let unit_key = KeyPair::generate().expect("key");
        let csr = CertificateParams::new(Vec::<String>::new())
            .expect("params")
            .serialize_request(&unit_key)
            .expect("csr")
            .pem()
            .expect("pem");
        let first = ca.sign_device_csr("unit9", &csr, YEAR).expect("signed");
        let again = ca.sign_device_csr("unit9", &csr, YEAR).expect("signed");
        assert_ne!(first.serial, again.serial, "same key, new serial");
        assert_eq!(parsed_serial(&first.cert_pem), first.serial);
        let (_, pem) = x509_parser::pem::parse_x509_pem(first.cert_pem.as_bytes()).expect("pem");
        let cert = pem.parse_x509().expect("x509");
        let not_after_secs =
            u64::try_from(cert.validity().not_after.timestamp()).expect("after 1970");
        assert_eq!(first.not_after, Timestamp(not_after_secs * 1000));
        let now = storage::time::Clock::now(&storage::time::SystemClock).0;
        let year_ms = u64::try_from(YEAR.as_millis()).expect("fits");
        assert!(first.not_after.0.abs_diff(now + year_ms) < 5_000);
    }

    #[test]
    fn the_ca_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = CertificateAuthority::open_or_create(dir.path()).expect("create");
        let again = CertificateAuthority::open_or_create(dir.path()).expect("reopen");
        assert_eq!(first.ca_pem(), again.ca_pem());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(CA_KEY))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn device_certificates_carry_the_device_id_as_organization() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::open_or_create(dir.path()).expect("create");
        let issued = ca.issue_device("unit42", YEAR).expect("issued");
        assert!(issued.key_pem.is_some());
        assert_eq!(subject_org(&issued.cert_pem), "unit42");
    }

    #[test]
    fn a_csr_is_signed_with_the_gateways_subject_not_the_units() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::open_or_create(dir.path()).expect("create");
        let unit_key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "someoneelse");
        let csr = params
            .serialize_request(&unit_key)
            .expect("csr")
            .pem()
            .expect("pem");
        let issued = ca.sign_device_csr("unit7", &csr, YEAR).expect("signed");
        assert!(issued.key_pem.is_none(), "the key stays on the unit");
        assert_eq!(subject_org(&issued.cert_pem), "unit7");
        assert!(matches!(
            ca.sign_device_csr("unit7", "not a csr", YEAR),
            Err(CsrError::Invalid(_))
        ));
    }
}
