//! `WebSocketConfig`: every limit of the WebSocket module in one place.
//!
//! The decoder (`decoder.rs`) checks frame and message sizes against it as headers arrive, before
//! any payload is buffered; the handshake (`handshake.rs`) bounds the upgrade request by size and
//! time; the encoder (`encoder.rs`) reads the compression settings. Each field has a documented
//! default, returned by `WebSocketConfig::default()`.

use std::time::Duration;

/// Limits and options of one WebSocket server (shared by all its connections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketConfig {
    /// Largest payload of one frame, in bytes. A bigger frame header fails the connection with
    /// close code 1009 before any of its payload is read. Default: 16 MiB.
    pub max_frame_size: usize,
    /// Largest message (sum of its fragments' payloads, after decompression), in bytes. Default:
    /// 64 MiB. Exceeding it fails the connection with close code 1009.
    pub max_message_size: usize,
    /// Largest upgrade request (request line plus headers), in bytes; a bigger request is answered
    /// with 431 and closed. Default: 8 KiB.
    pub max_handshake_size: usize,
    /// Most headers the upgrade request may carry; more is answered with 431. Default: 64.
    pub max_handshake_headers: usize,
    /// Time a connection may take from accept to a complete upgrade request; a connection still
    /// in the handshake after it is closed. Default: 10 s.
    pub handshake_timeout: Duration,
    /// Time the peer has to answer a Close the server started (`WsConn::close`) before the TCP
    /// connection is closed anyway. Default: 5 s.
    pub close_timeout: Duration,
    /// Offer permessage-deflate (RFC 7692) when the client asks for it. Default: true.
    pub permessage_deflate: bool,
    /// Outgoing messages shorter than this are sent uncompressed (RSV1 clear) even when
    /// permessage-deflate is negotiated, since deflate adds bytes to tiny payloads. Default: 0
    /// (compress every message): RFC 7692 allows uncompressed messages, but some clients (e.g.
    /// kosoku 0.1.0, the Autobahn port the test suite uses) mishandle them.
    pub compression_threshold: usize,
    /// flate2 compression level (0-9) for outgoing messages. Default: 1. Compression dominates a
    /// deflate connection's CPU: echoing Autobahn case 12.3.15 (1000 x 128 KiB text) took the
    /// server 11.0 s of CPU at level 6 and 2.1 s at level 1 (perf: 85% in the compressor).
    pub compression_level: u32,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_handshake_size: 8 << 10,
            max_handshake_headers: 64,
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            permessage_deflate: true,
            compression_threshold: 0,
            compression_level: 1,
        }
    }
}

impl WebSocketConfig {
    /// Sets `max_frame_size`.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }
    /// Sets `max_message_size`.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
    /// Sets `max_handshake_size`.
    pub fn max_handshake_size(mut self, bytes: usize) -> Self {
        self.max_handshake_size = bytes;
        self
    }
    /// Sets `handshake_timeout`.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
    /// Sets `permessage_deflate`.
    pub fn permessage_deflate(mut self, enabled: bool) -> Self {
        self.permessage_deflate = enabled;
        self
    }
}
