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
}

impl ErrorKind {
    /// Every kind, in the order of [`ErrorKind::index`].
    pub const ALL: [ErrorKind; 11] = [
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
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Classify a socket error on an established connection.
    pub fn from_io(error: &io::Error) -> ErrorKind {
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
}
