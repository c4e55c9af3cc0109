//! Throwaway certificates for quick runs and tests: [`SelfSigned`] generates an ECDSA P-256
//! key and a self-signed certificate with rcgen, and gives both in DER (for
//! [`server_config`](super::server_config)) and PEM (for clients that must trust it, e.g.
//! `curl --cacert`), plus the certificate's SHA-256 fingerprint (what `openssl x509
//! -fingerprint -sha256` prints), so a user can check what a client is shown.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::TlsError;

/// A generated certificate and its private key.
pub struct SelfSigned {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    key_der: Vec<u8>,
    key_pem: String,
}

impl std::fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("SelfSigned")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl SelfSigned {
    /// A certificate for `names` (DNS names or IP addresses, the subject alternative names),
    /// valid from now for rcgen's default period.
    pub fn generate(names: &[&str]) -> Result<SelfSigned, TlsError> {
        let params = rcgen::CertificateParams::new(to_strings(names))?;
        Self::from_params(params)
    }

    /// A certificate for `names` that expired long ago (valid 2000-01-01 to 2001-01-01): for
    /// testing that clients reject it and that the server counts their alert.
    pub fn generate_expired(names: &[&str]) -> Result<SelfSigned, TlsError> {
        let mut params = rcgen::CertificateParams::new(to_strings(names))?;
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        Self::from_params(params)
    }

    fn from_params(params: rcgen::CertificateParams) -> Result<SelfSigned, TlsError> {
        let key_pair = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key_pair)?;
        Ok(SelfSigned {
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_der: key_pair.serialize_der(),
            key_pem: key_pair.serialize_pem(),
        })
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert_der.clone()
    }

    /// The private key, PKCS#8 DER.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// The certificate, PEM (give it to clients as their trust anchor).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate's SHA-256 fingerprint, upper-case hex pairs joined by colons.
    pub fn fingerprint(&self) -> String {
        sha256_fingerprint(&self.cert_der)
    }
}

/// SHA-256 of `der` as `AB:CD:...` (the format of `openssl x509 -fingerprint -sha256`). The hash
/// comes from the rustls `ring` provider, so no other hashing crate is linked for it.
pub fn sha256_fingerprint(der: &[u8]) -> String {
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    let hash = match suite.tls13() {
        Some(tls13) => tls13.common.hash_provider.hash(der),
        None => unreachable!("TLS13_AES_128_GCM_SHA256 is a TLS 1.3 suite"),
    };
    hash.as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn to_strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256_of_the_der() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            sha256_fingerprint(b"abc").replace(':', ""),
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
        );
        let cert = SelfSigned::generate(&["localhost", "127.0.0.1"]).unwrap();
        assert_eq!(cert.fingerprint().len(), 32 * 3 - 1);
        assert!(cert.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.key_pem().contains("PRIVATE KEY"));
        assert!(!format!("{cert:?}").contains("PRIVATE"));
    }
}
