//! The kinds of failure a run counts. A failing server is data, not a crash: every connection
//! or request that goes wrong lands in exactly one of these buckets, and the summary reports
//! them by name (`requests.errors` in the JSON).

use std::io;

use crate::framing::FrameError;

/// One countable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The server refused the TCP connection.
    ConnectRefused,
    /// Connect (or the WebSocket handshake) took longer than `--timeout`.
    ConnectTimeout,
    /// Any other connect failure (no route, no free local port, ...).
    ConnectOther,
    /// The WebSocket upgrade was refused or answered wrongly.
    Handshake,
    /// The server reset the connection.
    Reset,
    /// The server closed the connection (FIN, or a WebSocket close frame).
    Closed,
    /// A request got no reply within `--timeout`.
    Timeout,
    /// The reply broke the framing's rules.
    Protocol,
    /// `--verify`: a reply differed from the request (echo framings) or was not 2xx (http).
    VerifyMismatch,
    /// HTTP response with a status outside 2xx (without `--verify`).
    HttpStatus,
    /// Any other socket error.
    Io,
    /// TLS: the server's certificate chain does not lead to a trusted CA (`--ca`, the system
    /// bundle), or it is malformed or revoked.
    TlsBadCertificate,
    /// TLS: the server's certificate has expired (or is not valid yet).
    TlsCertificateExpired,
    /// TLS: the server's certificate is not valid for the name checked (`--sni` or the host).
    TlsCertificateName,
    /// TLS: the server refused the handshake with an alert (no common version or cipher, it
    /// wants a client certificate, ...).
    TlsAlert,
    /// TLS: the handshake failed otherwise: the server answered with something that is not TLS
    /// (a plaintext port), broke the protocol, or closed half way.
    TlsHandshake,
    /// TLS: the handshake did not complete within `--timeout`.
    TlsHandshakeTimeout,
    /// TLS: the server chose an ALPN protocol the framing does not speak.
    TlsAlpn,
    /// TLS: a record after the handshake was corrupt, undecryptable or oversized, or the server
    /// sent a fatal alert.
    TlsProtocol,
}

impl ErrorKind {
    /// Every kind, in the order of [`ErrorKind::index`].
    pub const ALL: [ErrorKind; 19] = [
        ErrorKind::ConnectRefused,
        ErrorKind::ConnectTimeout,
        ErrorKind::ConnectOther,
        ErrorKind::Handshake,
        ErrorKind::Reset,
        ErrorKind::Closed,
        ErrorKind::Timeout,
        ErrorKind::Protocol,
        ErrorKind::VerifyMismatch,
        ErrorKind::HttpStatus,
        ErrorKind::Io,
        ErrorKind::TlsBadCertificate,
        ErrorKind::TlsCertificateExpired,
        ErrorKind::TlsCertificateName,
        ErrorKind::TlsAlert,
        ErrorKind::TlsHandshake,
        ErrorKind::TlsHandshakeTimeout,
        ErrorKind::TlsAlpn,
        ErrorKind::TlsProtocol,
    ];

    pub const COUNT: usize = Self::ALL.len();

    /// The name used as the key in the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::ConnectOther => "connect_other",
            ErrorKind::Handshake => "handshake",
            ErrorKind::Reset => "reset",
            ErrorKind::Closed => "closed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol",
            ErrorKind::VerifyMismatch => "verify_mismatch",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::Io => "io",
            ErrorKind::TlsBadCertificate => "tls_bad_certificate",
            ErrorKind::TlsCertificateExpired => "tls_certificate_expired",
            ErrorKind::TlsCertificateName => "tls_certificate_name",
            ErrorKind::TlsAlert => "tls_alert",
            ErrorKind::TlsHandshake => "tls_handshake",
            ErrorKind::TlsHandshakeTimeout => "tls_handshake_timeout",
            ErrorKind::TlsAlpn => "tls_alpn",
            ErrorKind::TlsProtocol => "tls_protocol",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether this is one of the `tls_*` kinds.
    pub fn is_tls(self) -> bool {
        self.as_str().starts_with("tls_")
    }

    /// Classify a socket error on an established connection (a rustls error travels inside
    /// an `io::Error`, see `tls::tls_io_error`).
    pub fn from_io(error: &io::Error) -> ErrorKind {
        if let Some(inner) = error.get_ref() {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return ErrorKind::from_tls(tls, false);
            }
            if inner.is::<crate::tls::AlpnMismatch>() {
                return ErrorKind::TlsAlpn;
            }
        }
        match error.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => ErrorKind::Reset,
            io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof => ErrorKind::Closed,
            io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Io,
        }
    }

    /// Classify a failed connect.
    pub fn from_connect(error: &io::Error) -> ErrorKind {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
            io::ErrorKind::TimedOut => ErrorKind::ConnectTimeout,
            io::ErrorKind::ConnectionReset => ErrorKind::Reset,
            _ => ErrorKind::ConnectOther,
        }
    }

    /// Classify an error during the TLS handshake: rustls errors by cause, a socket error as
    /// a handshake failure unless it is a plain reset.
    pub fn from_tls_handshake(error: &io::Error) -> ErrorKind {
        if let Some(inner) = error.get_ref() {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return ErrorKind::from_tls(tls, true);
            }
            if inner.is::<crate::tls::AlpnMismatch>() {
                return ErrorKind::TlsAlpn;
            }
        }
        match error.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => ErrorKind::Reset,
            _ => ErrorKind::TlsHandshake,
        }
    }

    /// Classify a rustls error, `in_handshake` telling protocol errors before and after the
    /// handshake apart.
    pub fn from_tls(error: &rustls::Error, in_handshake: bool) -> ErrorKind {
        use rustls::CertificateError as C;
        match error {
            rustls::Error::InvalidCertificate(
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. },
            ) => ErrorKind::TlsCertificateExpired,
            rustls::Error::InvalidCertificate(
                C::NotValidForName | C::NotValidForNameContext { .. },
            ) => ErrorKind::TlsCertificateName,
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                ErrorKind::TlsBadCertificate
            }
            rustls::Error::NoApplicationProtocol => ErrorKind::TlsAlpn,
            rustls::Error::AlertReceived(_) if in_handshake => ErrorKind::TlsAlert,
            _ if in_handshake => ErrorKind::TlsHandshake,
            _ => ErrorKind::TlsProtocol,
        }
    }

    /// Classify a decode failure.
    pub fn from_frame(error: &FrameError) -> ErrorKind {
        match error {
            FrameError::Closed => ErrorKind::Closed,
            FrameError::Handshake(_) => ErrorKind::Handshake,
            _ => ErrorKind::Protocol,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_all() {
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
    }

    #[test]
    fn classifies_resets_and_refusals() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(ErrorKind::from_io(&reset), ErrorKind::Reset);
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(ErrorKind::from_connect(&refused), ErrorKind::ConnectRefused);
        assert_eq!(
            ErrorKind::from_frame(&FrameError::Closed),
            ErrorKind::Closed
        );
    }

    #[test]
    fn classifies_tls_failures_by_cause() {
        use rustls::CertificateError as C;
        let wrap = |e: rustls::Error| crate::tls::tls_io_error(e);
        let cases = [
            (
                rustls::Error::InvalidCertificate(C::UnknownIssuer),
                ErrorKind::TlsBadCertificate,
            ),
            (
                rustls::Error::InvalidCertificate(C::Expired),
                ErrorKind::TlsCertificateExpired,
            ),
            (
                rustls::Error::InvalidCertificate(C::NotValidForName),
                ErrorKind::TlsCertificateName,
            ),
            (
                rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
                ErrorKind::TlsAlert,
            ),
            (rustls::Error::DecryptError, ErrorKind::TlsHandshake),
        ];
        for (error, kind) in cases {
            assert_eq!(ErrorKind::from_tls_handshake(&wrap(error)), kind);
        }
        assert_eq!(
            ErrorKind::from_io(&wrap(rustls::Error::DecryptError)),
            ErrorKind::TlsProtocol
        );
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "half way");
        assert_eq!(ErrorKind::from_tls_handshake(&eof), ErrorKind::TlsHandshake);
        assert!(ErrorKind::TlsAlpn.is_tls() && !ErrorKind::Reset.is_tls());
    }
}
