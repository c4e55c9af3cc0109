//! Throwaway TLS certificates: one self-signed ECDSA P-256 certificate and key (rcgen) valid for
//! `localhost`, `127.0.0.1` and `::1`, written as PEM files. The sweep runner makes one per sweep
//! in the output directory and hands it to every TLS server of the sweep (`--tls-cert`,
//! `--tls-key`) and, as the trust anchor, to the load generator (`--ca`), so gev and the
//! tokio-rustls reference serve the same certificate and the client verifies it as a real
//! client would. `ref-tokio-tls-echo --tls-self-signed` uses the same generator in memory.

use std::path::{Path, PathBuf};

/// The names the certificate is valid for: what the harness and the tests connect to.
pub const NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A certificate and its private key, PEM encoded.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Where [`write_self_signed`] put the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a certificate could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot generate a TLS certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// A fresh self-signed certificate for [`NAMES`].
pub fn self_signed() -> Result<SelfSigned, CertError> {
    let names: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names)?;
    Ok(SelfSigned {
        cert_pem: certified.cert.pem(),
        key_pem: certified.key_pair.serialize_pem(),
    })
}

/// Generate a certificate and write `tls-cert.pem` and `tls-key.pem` into `dir`.
pub fn write_self_signed(dir: &Path) -> Result<CertFiles, CertError> {
    let pair = self_signed()?;
    let files = CertFiles {
        cert: dir.join("tls-cert.pem"),
        key: dir.join("tls-key.pem"),
    };
    for (path, text) in [(&files.cert, &pair.cert_pem), (&files.key, &pair.key_pem)] {
        std::fs::write(path, text).map_err(|source| CertError::Write {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_pem_pair() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_self_signed(dir.path()).unwrap();
        let cert = std::fs::read_to_string(&files.cert).unwrap();
        let key = std::fs::read_to_string(&files.key).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        assert!(key.contains("PRIVATE KEY-----"), "{key}");
        // Two calls give two different certificates.
        assert_ne!(self_signed().unwrap().cert_pem, cert);
    }
}
