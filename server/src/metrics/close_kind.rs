//! The fixed set of close reasons the metrics count, as a dense index.
//!
//! `gev_closes_total` has one series per loop and reason; the reasons are a closed set so the
//! exposition's cardinality is bounded. `CloseKind` mirrors the core's [`crate::CloseReason`]
//! one to one (the conversion `From<CloseReason> for CloseKind` is in handler.rs, so
//! `LoopMetrics::on_close(reason)` takes either) and gives each reason an array index, so
//! recording a close is one indexed store with no string handling on the event loop.

/// Why a connection was closed, as counted by the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseKind {
    /// The peer closed its side (read returned 0) or reset the connection.
    Peer,
    /// No traffic for longer than the idle timeout.
    Idle,
    /// An I/O error on the socket.
    Error,
    /// The protocol rejected the input (`Protocol::unpack` returned an error).
    Protocol,
    /// The server is stopping.
    Shutdown,
    /// The output stayed above the high watermark and the server is set to close on backpressure.
    Backpressure,
    /// The application closed it (`conn.close()` or `ConnHandle::close()`).
    Local,
    /// The handler panicked while handling this connection.
    Panic,
    /// TLS failed (a fatal alert from the peer, plaintext on the TLS port, a rejected record).
    Tls,
    /// The TLS handshake did not complete within the handshake timeout.
    HandshakeTimeout,
}

impl CloseKind {
    /// Every kind, in index order (the order of the exposition).
    pub const ALL: [CloseKind; 10] = [
        CloseKind::Peer,
        CloseKind::Idle,
        CloseKind::Error,
        CloseKind::Protocol,
        CloseKind::Shutdown,
        CloseKind::Backpressure,
        CloseKind::Local,
        CloseKind::Panic,
        CloseKind::Tls,
        CloseKind::HandshakeTimeout,
    ];

    /// Number of kinds (the length of the per-loop close counter array).
    pub const COUNT: usize = Self::ALL.len();

    /// The `reason` label value; the same strings as `CloseReason::as_str()`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseKind::Peer => "peer",
            CloseKind::Idle => "idle",
            CloseKind::Error => "error",
            CloseKind::Protocol => "protocol",
            CloseKind::Shutdown => "shutdown",
            CloseKind::Backpressure => "backpressure",
            CloseKind::Local => "local",
            CloseKind::Panic => "panic",
            CloseKind::Tls => "tls",
            CloseKind::HandshakeTimeout => "handshake_timeout",
        }
    }

    /// Position in [`CloseKind::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_position_in_all() {
        for (position, kind) in CloseKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), position);
        }
    }

    #[test]
    fn mirrors_every_close_reason_with_the_same_label() {
        use crate::CloseReason;
        let reasons = [
            CloseReason::Peer,
            CloseReason::Idle,
            CloseReason::Error,
            CloseReason::Protocol,
            CloseReason::Shutdown,
            CloseReason::Backpressure,
            CloseReason::Local,
            CloseReason::Panic,
            CloseReason::Tls,
            CloseReason::HandshakeTimeout,
        ];
        assert_eq!(reasons.len(), CloseKind::COUNT);
        for (reason, kind) in reasons.into_iter().zip(CloseKind::ALL) {
            assert_eq!(CloseKind::from(reason), kind);
            assert_eq!(kind.as_str(), reason.as_str());
        }
    }

    #[test]
    fn label_values_are_distinct_snake_case() {
        let mut labels: Vec<&str> = CloseKind::ALL.iter().map(|k| k.as_str()).collect();
        assert!(labels
            .iter()
            .all(|l| l.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), CloseKind::COUNT);
    }
}
