//! Building a [`rustls::ServerConfig`] for [`ServerOptions::tls`](crate::ServerOptions::tls):
//! from certificates and a key in memory ([`server_config`]) or from PEM files
//! ([`server_config_from_pem_files`]). The helpers pick the `ring` provider explicitly (the
//! process-wide default would panic if a second provider were ever linked in), require no client
//! certificate, and turn session resumption on: stateless tickets from
//! `rustls::crypto::ring::Ticketer` (TLS 1.3 and 1.2) plus a server-side session cache of
//! [`SESSION_CACHE_SIZE`] entries (TLS 1.2 session ids). ALPN is whatever the caller puts in
//! `alpn_protocols` afterwards (see [`server_config`]).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ServerSessionMemoryCache;
use rustls::ServerConfig;

use super::TlsError;

/// Sessions the server-side cache of [`server_config`] keeps (TLS 1.2 session-id resumption;
/// TLS 1.3 and ticket resumption need no server state). About 100 bytes each.
pub const SESSION_CACHE_SIZE: usize = 4096;

/// A server configuration for `certs` (leaf first, then intermediates) and `key`, with session
/// resumption on (tickets and a session cache) and no client authentication. Set ALPN on the
/// result before wrapping it in an `Arc`:
///
/// ```
/// let cert = gev::tls::SelfSigned::generate(&["localhost"]).unwrap();
/// let mut config = gev::tls::server_config(vec![cert.cert_der()], cert.key_der()).unwrap();
/// config.alpn_protocols = vec![b"http/1.1".to_vec()];
/// let options = gev::ServerOptions::default().tls(std::sync::Arc::new(config));
/// assert!(options.tls.is_some());
/// ```
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
    Ok(config)
}

/// [`server_config`] from a PEM certificate chain file and a PEM private key file (PKCS#8,
/// PKCS#1 or SEC1).
pub fn server_config_from_pem_files(
    cert_path: &Path,
    key_path: &Path,
) -> Result<ServerConfig, TlsError> {
    server_config(load_certs(cert_path)?, load_private_key(key_path)?)
}

/// Every certificate in a PEM file, in file order.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |reason: String| TlsError::Pem {
        what: "certificates",
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        what: "private key",
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::SelfSigned;

    #[test]
    fn pem_files_round_trip_and_resumption_is_on() {
        let cert = SelfSigned::generate(&["localhost"]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, cert.cert_pem()).unwrap();
        std::fs::write(&key_path, cert.key_pem()).unwrap();
        let config = server_config_from_pem_files(&cert_path, &key_path).unwrap();
        assert!(config.ticketer.enabled());
        assert!(config.alpn_protocols.is_empty());
    }

    #[test]
    fn bad_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a pem file\n").unwrap();
        let err = load_certs(&empty).unwrap_err().to_string();
        assert!(err.contains("empty.pem"), "{err}");
        let missing = dir.path().join("missing.pem");
        let err = load_private_key(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.pem"), "{err}");
    }

    #[test]
    fn mismatched_key_is_rejected() {
        let a = SelfSigned::generate(&["a"]).unwrap();
        let b = SelfSigned::generate(&["b"]).unwrap();
        assert!(server_config(vec![a.cert_der()], b.key_der()).is_err());
    }
}
