//! The errors of building a TLS configuration ([`TlsError`]): reading PEM files, a key that does
//! not match, a certificate that cannot be generated. Errors of a live connection are not here:
//! they close that connection only and are counted as
//! [`CloseReason::Tls`](crate::CloseReason::Tls) or
//! [`CloseReason::HandshakeTimeout`](crate::CloseReason::HandshakeTimeout).

use std::path::PathBuf;

/// What went wrong while building a TLS server configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {what} from {path}: {reason}")]
    Pem {
        /// `"certificates"` or `"private key"`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The reader's or parser's message.
        reason: String,
    },
    /// The certificate file holds no certificate.
    #[error("{path} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the certificate chain or key (e.g. the key does not match the
    /// certificate, or its algorithm is not supported by the `ring` provider).
    #[error("rustls rejected the certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
    /// rcgen could not generate a self-signed certificate.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
}
