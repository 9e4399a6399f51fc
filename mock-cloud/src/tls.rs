//! HTTPS for the mocks: a test CA made at start-up and a server
//! certificate it signs for the loopback names a client dials.
//!
//! Made at run time rather than checked in, so no private key sits in the
//! repository and nothing expires under the tests. A CA and a leaf rather
//! than one self-signed certificate because that is what an enterprise
//! `ca-file` holds: the client is given the CA, never the server's own
//! certificate.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A mock's TLS side: the server configuration every connection uses and
/// the PEM of the CA that signed its certificate.
pub(crate) struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    pub ca_pem: String,
}

fn invalid(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("mock TLS: {what}: {e}"))
}

impl Tls {
    /// A new CA and a certificate for `127.0.0.1`, `::1`, `localhost` and
    /// `also` (the listener's own address, when it is none of those).
    pub fn new(also: Option<IpAddr>) -> io::Result<Tls> {
        let ca_key = KeyPair::generate().map_err(|e| invalid("CA key", e))?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| invalid("CA", e))?;
        ca.distinguished_name
            .push(DnType::CommonName, "floaty mock-cloud test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).map_err(|e| invalid("CA", e))?;
        let issuer = Issuer::new(ca, ca_key);

        let mut names = vec!["127.0.0.1".to_string(), "::1".into(), "localhost".into()];
        if let Some(ip) = also.filter(|ip| !ip.is_loopback() && !ip.is_unspecified()) {
            names.push(ip.to_string());
        }
        let key = KeyPair::generate().map_err(|e| invalid("server key", e))?;
        let mut leaf = CertificateParams::new(names).map_err(|e| invalid("server", e))?;
        leaf.distinguished_name
            .push(DnType::CommonName, "floaty mock-cloud");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_cert = leaf
            .signed_by(&key, &issuer)
            .map_err(|e| invalid("server", e))?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("protocol versions", e))?
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf_cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .map_err(|e| invalid("server certificate", e))?;
        Ok(Tls {
            config: Arc::new(config),
            ca_pem: ca_cert.pem(),
        })
    }
}
