//! The certificates of mosquitto's half of the scale run, made by the simulator for that run
//! and thrown away after it: a CA, a server certificate for the name the units dial, and one
//! client certificate per unit (and one for the publisher of the key sets).
//!
//! The gateway's half uses the certificates the gateway's own CA issued at registration;
//! the simulator never holds that CA's key, so it cannot issue a server certificate
//! mosquitto could present to units trusting it. Instead both halves use the same client
//! code, TLS stack and key type (ECDSA P-256, as the gateway's CA issues) and certificates
//! of the same shape (subject CN and O = the unit's id); only the CA differs.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// How long the throwaway certificates are valid: the run, with room for clock skew.
const VALIDITY: Duration = Duration::days(2);
const BACKDATE: Duration = Duration::hours(1);

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub(super) struct Pems {
    pub(super) cert: String,
    pub(super) key: String,
}

impl std::fmt::Debug for Pems {
    /// Leaves out the key: a private key has no place in logs.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Pems").finish_non_exhaustive()
    }
}

/// The run's CA; it signs the server's and the clients' certificates.
pub(super) struct ThrowawayCa {
    issuer: Issuer<'static, KeyPair>,
    pub(super) ca_pem: String,
}

fn error(what: &str) -> impl FnOnce(rcgen::Error) -> String + '_ {
    move |error| format!("{what}: {error}")
}

fn validity(params: &mut CertificateParams) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + VALIDITY;
}

impl ThrowawayCa {
    pub(super) fn new() -> Result<Self, String> {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(error("CA parameters"))?;
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            "fleetgate-sim throwaway CA for mosquitto",
        );
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params);
        let key = KeyPair::generate().map_err(error("CA key"))?;
        let cert = params.self_signed(&key).map_err(error("CA certificate"))?;
        Ok(Self {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The broker's certificate, valid for `server_name` (a DNS name or an IP address).
    pub(super) fn server(&self, server_name: &str) -> Result<Pems, String> {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(error("server parameters"))?;
        let san = match server_name.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                server_name
                    .to_owned()
                    .try_into()
                    .map_err(error("server name"))?,
            ),
        };
        params.subject_alt_names.push(san);
        params
            .distinguished_name
            .push(DnType::CommonName, "mosquitto (fleetgate-sim scale)");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut params);
        self.sign(params, "server certificate")
    }

    /// A client certificate whose subject CN (mosquitto's username with
    /// `use_identity_as_username`) and O (the gateway's tenant) are `identity`.
    pub(super) fn client(&self, identity: &str) -> Result<Pems, String> {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(error("client parameters"))?;
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, identity);
        name.push(DnType::CommonName, identity);
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params);
        self.sign(params, "client certificate")
    }

    fn sign(&self, params: CertificateParams, what: &str) -> Result<Pems, String> {
        let key = KeyPair::generate().map_err(error(what))?;
        let cert = params.signed_by(&key, &self.issuer).map_err(error(what))?;
        Ok(Pems {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_work_with_the_units_tls_code() {
        let ca = ThrowawayCa::new().expect("CA");
        assert!(ca.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let server = ca.server("localhost").expect("server");
        assert!(server.key.contains("PRIVATE KEY"));
        assert!(ca.server("127.0.0.1").is_ok(), "an IP address is a SAN too");
        let unit = ca.client("simabcd0").expect("client");
        crate::unit::tls::client_config(&ca.ca_pem, &unit.cert, &unit.key)
            .expect("the units' own TLS setup accepts them");
        assert!(!format!("{unit:?}").contains("PRIVATE"));
    }
}
