//! Certificates trusted on top of the built-in roots (floaty's `ca-file`).
//!
//! Enterprises put a TLS-inspecting proxy or an internal API gateway in
//! front of the cloud API, signed by a CA of their own. Trusting that CA
//! *in addition to* the compiled-in webpki roots keeps the public API
//! reachable when the proxy is bypassed (`NO_PROXY`, a failover path).
//!
//! The bundle is checked here, once, the way the client will read it: the
//! config check runs [`CaBundle::from_pem`] before any side effect, so a
//! bundle that loads there cannot fail later in the forked refresher,
//! where only the log would say so.

use std::fmt;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::ProviderError;

/// A PEM bundle of CA certificates, every one of which parses.
///
/// `PartialEq` compares the bytes, so a daemon reload sees a changed
/// bundle; `Debug` shows only the count.
#[derive(Clone, PartialEq, Eq)]
pub struct CaBundle {
    pem: Vec<u8>,
    count: usize,
}

/// Why a bundle was refused; the caller adds the file and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaBundleError {
    #[error("holds no PEM certificate (no -----BEGIN CERTIFICATE----- block)")]
    NoCertificate,
    /// Bad base64, or a BEGIN without its END line.
    #[error("certificate {number} is not valid PEM: {why}")]
    BadPem { number: usize, why: String },
    /// Decodes, but is not an X.509 certificate a root store accepts.
    #[error("certificate {number} does not parse as an X.509 certificate: {why}")]
    BadCertificate { number: usize, why: String },
}

impl CaBundle {
    /// Checks `pem` and keeps it. Sections other than certificates (a key
    /// pasted along) are skipped, as TLS clients do.
    pub fn from_pem(pem: &[u8]) -> Result<CaBundle, CaBundleError> {
        let mut count = 0;
        for item in CertificateDer::pem_slice_iter(pem) {
            let number = count + 1;
            let der = item.map_err(|e| CaBundleError::BadPem {
                number,
                why: pem_problem(&e),
            })?;
            webpki::anchor_from_trusted_cert(&der).map_err(|e| CaBundleError::BadCertificate {
                number,
                why: format!("{e:?}"),
            })?;
            count = number;
        }
        if count == 0 {
            return Err(CaBundleError::NoCertificate);
        }
        Ok(CaBundle {
            pem: pem.to_vec(),
            count,
        })
    }

    /// How many certificates the bundle holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Never true: [`CaBundle::from_pem`] refuses an empty bundle.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub(crate) fn certificates(&self) -> Result<Vec<reqwest::Certificate>, ProviderError> {
        reqwest::Certificate::from_pem_bundle(&self.pem).map_err(|e| {
            ProviderError::Setup(format!(
                "cannot read the CA bundle: {}",
                crate::http::chain(&e)
            ))
        })
    }
}

/// The PEM reader's error in words: its own text quotes the marker as a
/// list of byte values.
fn pem_problem(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => "a BEGIN line without its END line".into(),
        Error::IllegalSectionStart { .. } => "a malformed BEGIN line".into(),
        Error::Base64Decode(why) => format!("bad base64 ({why})"),
        other => other.to_string(),
    }
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaBundle({} certificates)", self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real CA certificate, from the mock's test CA.
    fn ca_pem() -> String {
        let m = mock_cloud::Cloudscale::start_tls("t").expect("mock");
        m.ca_pem().expect("https mock has a CA")
    }

    #[test]
    fn accepts_certificates_and_skips_other_sections() {
        let ca = ca_pem();
        let two = format!(
            "# comment\n{ca}\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{ca}"
        );
        let bundle = CaBundle::from_pem(two.as_bytes()).expect("bundle");
        assert_eq!(bundle.len(), 2);
        assert_eq!(format!("{bundle:?}"), "CaBundle(2 certificates)");
        assert_eq!(bundle.certificates().expect("certs").len(), 2);
        assert_eq!(bundle, CaBundle::from_pem(two.as_bytes()).unwrap());
        assert_ne!(bundle, CaBundle::from_pem(ca.as_bytes()).unwrap());
    }

    #[test]
    fn refuses_what_a_root_store_would() {
        assert_eq!(
            CaBundle::from_pem(b"").unwrap_err(),
            CaBundleError::NoCertificate
        );
        assert_eq!(
            CaBundle::from_pem(b"just text\n").unwrap_err(),
            CaBundleError::NoCertificate
        );
        let bad_base64 = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            CaBundle::from_pem(bad_base64),
            Err(CaBundleError::BadPem { number: 1, .. })
        ));
        let ca = ca_pem();
        let unterminated = format!("{ca}-----BEGIN CERTIFICATE-----\nAAAA\n");
        let e = CaBundle::from_pem(unterminated.as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "certificate 2 is not valid PEM: a BEGIN line without its END line"
        );
        // Valid base64 of something that is no certificate.
        let not_x509 = format!(
            "{ca}-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n"
        );
        let e = CaBundle::from_pem(not_x509.as_bytes()).unwrap_err();
        assert!(
            matches!(e, CaBundleError::BadCertificate { number: 2, .. }),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with("certificate 2 does not parse"),
            "{e}"
        );
    }
}
