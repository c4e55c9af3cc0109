//! One connection's TLS state on its loop: a [`rustls::ServerConnection`] driven by the event
//! loop's own I/O, never by rustls touching the socket for reading.
//!
//! Read side (`feed`): the loop reads ciphertext into its shared scratch buffer as for plain
//! TCP; [`TlsSession::feed`] copies it into rustls (`read_tls`), decrypts (`process_new_packets`)
//! and drains *all* decrypted plaintext into the loop's shared plaintext buffer, which is handed
//! to the same unpack/deliver path as plaintext from a TCP read. Because every read's plaintext
//! is drained before `feed` returns, rustls never holds plaintext between iterations, so the
//! edge-triggered loop cannot miss data hidden in rustls's buffers; only an incomplete record
//! stays in rustls (its deframer buffer) until the rest arrives with the next edge.
//!
//! Write side (`seal` + `write_to`): the protocol packs plaintext into the connection's output
//! buffer as usual; at flush time the loop seals at most one chunk of it into TLS records
//! (`writer`) and writes them with one `writev` (`write_tls`), sealing the next chunk only once
//! rustls's records are all written. So rustls buffers at most one chunk of ciphertext and the
//! output buffer's size stays the measure the watermarks and backpressure work with.
//! Before the handshake completes nothing is sealed (application output waits in the output
//! buffer), and rustls's own handshake records are written by the same flush.

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

/// What a connection's TLS handshake agreed, as handlers see it ([`Conn::tls`](crate::Conn::tls)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// The ALPN protocol chosen (from the client's offer and `ServerConfig::alpn_protocols`).
    pub alpn_protocol: Option<Vec<u8>>,
    /// The server name the client asked for (SNI).
    pub server_name: Option<String>,
    /// TLS 1.2 or 1.3.
    pub protocol_version: Option<rustls::ProtocolVersion>,
    /// The handshake resumed an earlier session (ticket or session id).
    pub resumed: bool,
}

/// How feeding one read's ciphertext ended.
#[derive(Debug)]
pub(crate) enum Fed {
    /// All ciphertext was taken; the connection stays open.
    Open,
    /// The delivery callback asked to stop (the connection is closing); the rest is dropped.
    Stopped,
    /// The peer sent `close_notify`: it will send nothing more (RFC 8446 6.1: bytes after it are
    /// ignored).
    PeerClosed,
    /// The peer broke TLS (a bad record, an alert such as `bad_certificate`, plaintext on the
    /// TLS port, an oversized message): close once the alert rustls queued is flushed.
    Failed(TlsFailure),
}

/// Why TLS failed on a connection (logged; counted as `CloseReason::Tls`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsFailure {
    /// rustls rejected the input or the peer sent a fatal alert.
    #[error("{0}")]
    Protocol(#[from] rustls::Error),
    /// rustls refused to buffer more input (a message larger than it allows).
    #[error("{0}")]
    Buffer(#[from] io::Error),
}

/// What draining the decrypted plaintext found.
enum Drained {
    /// Everything rustls had was delivered (or is in `plain`).
    Empty,
    Stopped,
    PeerClosed,
}

/// The TLS state of one connection.
pub(crate) struct TlsSession {
    conn: ServerConnection,
    close_notify_queued: bool,
    /// `Handler::on_connect` has run: it runs once the handshake completed, so a handler only
    /// sees connections it can write to (and `on_close` only follows an `on_connect`).
    pub(crate) connected: bool,
}

impl TlsSession {
    pub(crate) fn new(config: &Arc<ServerConfig>) -> Result<TlsSession, rustls::Error> {
        let mut conn = ServerConnection::new(config.clone())?;
        // gev bounds output itself (watermarks) and hands rustls one chunk at a time.
        conn.set_buffer_limit(None);
        Ok(TlsSession {
            conn,
            close_notify_queued: false,
            connected: false,
        })
    }

    /// True until the handshake completed.
    #[inline]
    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// True while TLS records (handshake, application data, alerts) wait to be written.
    #[inline]
    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Feeds `ciphertext` (one socket read) to rustls and calls `deliver` with the decrypted
    /// plaintext, batched into `plain` (the loop's shared plaintext buffer; the whole read is
    /// usually one call; it also gets this session, e.g. for [`info`](Self::info)). `deliver`
    /// returns false to stop (the connection is closing).
    /// Plaintext decrypted before a TLS failure is delivered before the failure is returned.
    pub(crate) fn feed(
        &mut self,
        ciphertext: &[u8],
        plain: &mut [u8],
        mut deliver: impl FnMut(&mut [u8], &TlsSession) -> bool,
    ) -> Fed {
        let mut rest = ciphertext;
        let mut filled = 0;
        let mut peer_closed = false;
        let mut failure = None;
        while !rest.is_empty() {
            // Takes at most a few KiB at a time (rustls grows its buffer record by record).
            match self.conn.read_tls(&mut rest) {
                // close_notify was received earlier: what follows is ignored.
                Ok(0) => {
                    peer_closed = true;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    failure = Some(TlsFailure::Buffer(e));
                    break;
                }
            }
            if let Err(e) = self.conn.process_new_packets() {
                failure = Some(TlsFailure::Protocol(e));
                break;
            }
            match self.drain(plain, &mut filled, &mut deliver) {
                Drained::Empty => {}
                Drained::Stopped => return Fed::Stopped,
                Drained::PeerClosed => {
                    peer_closed = true;
                    break;
                }
            }
        }
        if failure.is_some() {
            // Records decrypted before the bad one are still the peer's data.
            if let Drained::Stopped = self.drain(plain, &mut filled, &mut deliver) {
                return Fed::Stopped;
            }
        }
        if filled > 0 && !deliver(&mut plain[..filled], self) {
            return Fed::Stopped;
        }
        match failure {
            Some(failure) => Fed::Failed(failure),
            None if peer_closed => Fed::PeerClosed,
            None => Fed::Open,
        }
    }

    /// Moves rustls's plaintext into `plain[filled..]`, delivering whenever `plain` is full.
    fn drain(
        &mut self,
        plain: &mut [u8],
        filled: &mut usize,
        deliver: &mut impl FnMut(&mut [u8], &TlsSession) -> bool,
    ) -> Drained {
        loop {
            if *filled == plain.len() {
                if !deliver(&mut plain[..*filled], self) {
                    return Drained::Stopped;
                }
                *filled = 0;
            }
            match self.conn.reader().read(&mut plain[*filled..]) {
                // close_notify received and every byte before it read.
                Ok(0) => return Drained::PeerClosed,
                Ok(n) => *filled += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drained::Empty,
                // UnexpectedEof needs a TCP EOF fed to rustls, which the loop never does (it
                // sees the EOF itself); treat it as the peer's close anyway.
                Err(_) => return Drained::PeerClosed,
            }
        }
    }

    /// Encrypts `plaintext` into TLS records queued for [`write_to`](Self::write_to); returns
    /// the bytes taken: all once the handshake is done (the buffer limit is off). Call it only
    /// after the handshake (before, rustls would buffer the plaintext itself).
    #[inline]
    pub(crate) fn seal(&mut self, plaintext: &[u8]) -> usize {
        debug_assert!(!self.is_handshaking());
        self.conn.writer().write(plaintext).unwrap_or(0)
    }

    /// Writes queued records to `stream` (one `writev` of up to 64 records).
    #[inline]
    pub(crate) fn write_to(&mut self, stream: &crate::transport::Stream) -> io::Result<usize> {
        let mut writer = stream;
        self.conn.write_tls(&mut writer)
    }

    /// Queues `close_notify` (once; nothing if a fatal alert was already queued).
    pub(crate) fn queue_close_notify(&mut self) {
        if !self.close_notify_queued {
            self.close_notify_queued = true;
            self.conn.send_close_notify();
        }
    }

    /// What the completed handshake agreed.
    pub(crate) fn info(&self) -> TlsInfo {
        TlsInfo {
            alpn_protocol: self.conn.alpn_protocol().map(<[u8]>::to_vec),
            server_name: self.conn.server_name().map(str::to_owned),
            protocol_version: self.conn.protocol_version(),
            resumed: self.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        }
    }

    /// After a TLS failure: rustls queued its alert (if any); no `close_notify` follows it.
    pub(crate) fn suppress_close_notify(&mut self) {
        self.close_notify_queued = true;
    }

    /// True once `close_notify` was queued (or suppressed after a failure).
    pub(crate) fn close_notify_queued(&self) -> bool {
        self.close_notify_queued
    }
}

#[cfg(test)]
mod tests {
    //! Drives a `TlsSession` against an in-memory rustls client, record by record, with the
    //! ciphertext cut at arbitrary points (as TCP may deliver it).
    use super::*;
    use crate::tls::{server_config, SelfSigned};
    use proptest::prelude::*;
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore};

    fn pair() -> (TlsSession, ClientConnection) {
        let cert = SelfSigned::generate(&["localhost"]).unwrap();
        let mut config = server_config(vec![cert.cert_der()], cert.key_der()).unwrap();
        config.alpn_protocols = vec![b"gev-test".to_vec()];
        let mut roots = RootCertStore::empty();
        roots.add(cert.cert_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client_config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client_config.alpn_protocols = vec![b"gev-test".to_vec()];
        let client = ClientConnection::new(
            Arc::new(client_config),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        (TlsSession::new(&Arc::new(config)).unwrap(), client)
    }

    /// Ciphertext the client has queued.
    fn client_output(client: &mut ClientConnection) -> Vec<u8> {
        let mut bytes = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut bytes).unwrap();
        }
        bytes
    }

    /// Ciphertext the server session has queued.
    fn server_output(server: &mut TlsSession) -> Vec<u8> {
        let mut bytes = Vec::new();
        while server.conn.wants_write() {
            server.conn.write_tls(&mut bytes).unwrap();
        }
        bytes
    }

    /// Feeds `bytes` to the server in pieces cut at `cuts`; returns the plaintext delivered.
    fn feed_in_pieces(
        server: &mut TlsSession,
        bytes: &[u8],
        cuts: &[usize],
        plain: &mut [u8],
    ) -> (Vec<u8>, bool) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut got = Vec::new();
        let mut start = 0;
        let mut closed = false;
        for cut in cuts {
            match server.feed(&bytes[start..cut], plain, |data, _| {
                got.extend_from_slice(data);
                true
            }) {
                Fed::Open => {}
                Fed::PeerClosed => closed = true,
                other => panic!("unexpected {other:?}"),
            }
            start = cut;
        }
        (got, closed)
    }

    fn handshake(server: &mut TlsSession, client: &mut ClientConnection) {
        let mut plain = vec![0u8; 1024];
        for _ in 0..4 {
            let hello = client_output(client);
            let (got, _) = feed_in_pieces(server, &hello, &[], &mut plain);
            assert!(got.is_empty());
            let reply = server_output(server);
            client.read_tls(&mut reply.as_slice()).unwrap();
            client.process_new_packets().unwrap();
            if !server.is_handshaking() && !client.is_handshaking() {
                return;
            }
        }
        panic!("handshake did not complete");
    }

    #[test]
    fn handshake_alpn_data_and_close_notify() {
        let (mut server, mut client) = pair();
        handshake(&mut server, &mut client);
        let info = server.info();
        assert_eq!(info.alpn_protocol.as_deref(), Some(&b"gev-test"[..]));
        assert_eq!(info.server_name.as_deref(), Some("localhost"));
        assert_eq!(
            info.protocol_version,
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        assert!(!info.resumed);
        client.writer().write_all(b"hello over tls").unwrap();
        client.send_close_notify();
        let bytes = client_output(&mut client);
        let mut plain = vec![0u8; 64];
        let (got, closed) = feed_in_pieces(&mut server, &bytes, &[], &mut plain);
        assert_eq!(got, b"hello over tls");
        assert!(closed);
        // Server to client, sealed in chunks, then close_notify.
        assert_eq!(server.seal(b"reply"), 5);
        server.queue_close_notify();
        server.queue_close_notify();
        let reply = server_output(&mut server);
        client.read_tls(&mut reply.as_slice()).unwrap();
        client.process_new_packets().unwrap();
        let mut text = Vec::new();
        let _ = client.reader().read_to_end(&mut text);
        assert_eq!(text, b"reply");
    }

    #[test]
    fn plaintext_on_the_tls_port_fails_with_an_alert() {
        let (mut server, _client) = pair();
        let mut plain = vec![0u8; 64];
        let fed = server.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &mut plain, |_, _| {
            true
        });
        assert!(matches!(fed, Fed::Failed(_)), "{fed:?}");
        assert!(server.wants_write(), "an alert is queued");
    }

    #[test]
    fn a_garbage_record_after_the_handshake_fails() {
        let (mut server, mut client) = pair();
        handshake(&mut server, &mut client);
        client.writer().write_all(b"before").unwrap();
        let mut bytes = client_output(&mut client);
        // An application-data record of 64 random-looking bytes (bad MAC).
        bytes.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x40]);
        bytes.extend((0..64u8).map(|i| i.wrapping_mul(37)));
        let mut plain = vec![0u8; 64];
        let mut got = Vec::new();
        let fed = server.feed(&bytes, &mut plain, |d, _| {
            got.extend_from_slice(d);
            true
        });
        assert!(
            matches!(fed, Fed::Failed(TlsFailure::Protocol(_))),
            "{fed:?}"
        );
        assert_eq!(got, b"before", "data before the bad record is delivered");
    }

    #[test]
    fn stop_drops_the_rest() {
        let (mut server, mut client) = pair();
        handshake(&mut server, &mut client);
        client.writer().write_all(&[7u8; 100]).unwrap();
        let bytes = client_output(&mut client);
        let mut plain = vec![0u8; 16];
        let mut calls = 0;
        let fed = server.feed(&bytes, &mut plain, |_, _| {
            calls += 1;
            false
        });
        assert!(matches!(fed, Fed::Stopped));
        assert_eq!(calls, 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Any cut of the ciphertext and any plaintext buffer size deliver the same bytes.
        #[test]
        fn any_fragmentation_delivers_every_byte(
            messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..3000), 1..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
            plain_size in 1usize..20_000,
        ) {
            let (mut server, mut client) = pair();
            handshake(&mut server, &mut client);
            let mut expected = Vec::new();
            for message in &messages {
                client.writer().write_all(message).unwrap();
                expected.extend_from_slice(message);
            }
            let bytes = client_output(&mut client);
            let mut plain = vec![0u8; plain_size];
            let (got, closed) = feed_in_pieces(&mut server, &bytes, &cuts, &mut plain);
            prop_assert!(!closed);
            prop_assert_eq!(got, expected);
        }
    }
}
