//! One connection's TLS state on its loop: a [`rustls::server::UnbufferedServerConnection`]
//! driven over the loop's own buffers, so rustls keeps no input or output buffer per
//! connection.
//!
//! Read side ([`TlsSession::feed`]): the loop reads ciphertext into its shared scratch buffer
//! (behind the carried bytes of an incomplete record, [`TlsSession::restore_carry`]) and
//! `feed` runs `process_tls_records` over it, one record per step: rustls decrypts each record
//! in place in the scratch buffer; the application data of every record is appended to the
//! loop's shared plaintext buffer and delivered once, after the last complete record, to the
//! same unpack/deliver path as a TCP read. (rustls 0.23 hands a record's payload out of a small
//! `Vec` it fills per record, `ReadTraffic::next_record`, as a `&[u8]`; protocols unmask in
//! place, so the payload is copied once into the plaintext buffer.) The incomplete record at
//! the end of a read (or a handshake message spread over records) is the only input kept per
//! connection: [`TlsSession::carry`], at most the read buffer less one record, freed as soon as
//! it is empty. Plaintext is never kept across iterations, so edge-triggered readiness cannot
//! strand data inside TLS.
//!
//! Write side ([`TlsSession::seal`], [`TlsSession::write_to`]): protocols pack plaintext into
//! the connection's output buffer as usual; at flush time the loop encrypts at most one chunk of
//! it (`WriteTraffic::encrypt`) straight into this session's record buffer (`outgoing`, storage
//! lent by the loop's buffer pool and given back once written), writes it with one `write`, and
//! encrypts the next chunk only once those records are written. Handshake flights, session
//! tickets, key updates and alerts (`EncodeTlsData`) go into the same buffer, in order, before
//! any application data after them. The output buffer stays the measure the watermarks and
//! backpressure work with.
//!
//! The SNI: rustls 0.23's unbuffered server connection does not expose the server name the
//! client asked for, so the loop's configuration wraps the certificate resolver
//! ([`loop_config`]); the wrapper notes the name in a thread-local while rustls resolves the
//! certificate inside `process_tls_records` on this loop's thread, and `feed` takes it from
//! there into [`TlsInfo::server_name`].

use std::cell::Cell;
use std::io::{self, Write};
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert, UnbufferedServerConnection};
use rustls::sign::CertifiedKey;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::ServerConfig;

use crate::output_buffer::{BufferPool, OutputBuffer};

/// The largest TLS record on the wire: a 5-byte header and up to 2^14 + 2048 bytes of
/// protected payload (TLS 1.2's bound; TLS 1.3 records are at most 2^14 + 256). rustls rejects
/// a record header announcing more (`record_overflow`) as soon as the 5 header bytes are read.
pub(crate) const MAX_RECORD: usize = 5 + 16_384 + 2048;

/// The smallest read buffer a TLS loop uses (its `read_buffer_size` is raised to it): room for
/// the largest carried handshake message plus one whole record after it.
pub const MIN_READ_BUFFER: usize = 64 * 1024;

/// Steps of `process_tls_records` in one flush-time drive: pending handshake records, a
/// `TransmitTlsData`, then `WriteTraffic`; a bound so a confused state can never spin the loop.
const MAX_WRITE_STEPS: usize = 8;

/// Per-record overhead allowance when sizing the space for `encrypt`: header, TLS 1.3 content
/// type, AEAD tag or TLS 1.2 explicit nonce, and a pending key update. A short guess only costs
/// a retry (rustls reports the size it needs and leaves the buffer untouched).
const RECORD_OVERHEAD_GUESS: usize = 64;

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
    /// All complete records were processed; the connection stays open.
    Open,
    /// The delivery callback asked to stop (the connection is closing).
    Stopped,
    /// The peer sent `close_notify`: it will send nothing more (RFC 8446 6.1: bytes after it are
    /// ignored).
    PeerClosed,
    /// The peer broke TLS (a bad record, an alert such as `bad_certificate`, plaintext on the
    /// TLS port, an oversized record): close once the alert rustls produced is flushed.
    Failed(TlsFailure),
}

/// Why TLS failed on a connection (logged; counted as `CloseReason::Tls`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsFailure {
    /// rustls rejected the input or the peer sent a fatal alert.
    #[error("{0}")]
    Protocol(#[from] rustls::Error),
    /// The bytes rustls could not consume yet (a handshake message spread over records) grew
    /// past what a read buffer can carry.
    #[error("incomplete TLS input of {size} bytes exceeds the {max}-byte limit")]
    CarryTooLarge { size: usize, max: usize },
    /// Decrypted data did not fit the plaintext buffer (it is as large as the read buffer, and
    /// a record's plaintext is shorter than its ciphertext, so this means a bug).
    #[error("decrypted data does not fit the plaintext buffer")]
    PlaintextOverflow,
    /// rustls could not encode a record it queued.
    #[error("cannot encode a TLS record: {0}")]
    Encode(EncodeError),
    /// rustls refused to encrypt (the traffic keys are exhausted).
    #[error("cannot encrypt: {0}")]
    Encrypt(EncryptError),
}

/// What one step of `process_tls_records` asks the caller to do next.
enum Step {
    /// Go on processing the same input.
    Continue,
    /// Every complete record is processed: wait for more input.
    NeedInput,
    PeerClosed,
    Failed(TlsFailure),
}

/// The TLS state of one connection.
pub(crate) struct TlsSession {
    conn: UnbufferedServerConnection,
    /// Ciphertext rustls could not consume yet: the incomplete record at the end of the last
    /// read, or, during a handshake, the records of a handshake message spread over several
    /// records (rustls joins them in place and discards them only once the message is whole).
    /// Empty and unallocated between reads that end on a record boundary.
    carry: Vec<u8>,
    /// Records waiting to be written: handshake flights, tickets, alerts, encrypted data.
    outgoing: OutputBuffer,
    /// The SNI noted while the ClientHello was processed, until it moves into the `TlsInfo`.
    server_name: Option<Box<str>>,
    close_notify_queued: bool,
    /// rustls reported an error: nothing more is processed or encrypted.
    failed: bool,
    /// `Handler::on_connect` has run: it runs once the handshake completed, so a handler only
    /// sees connections it can write to (and `on_close` only follows an `on_connect`).
    pub(crate) connected: bool,
}

impl TlsSession {
    pub(crate) fn new(config: &Arc<ServerConfig>) -> Result<TlsSession, rustls::Error> {
        Ok(TlsSession {
            conn: UnbufferedServerConnection::new(config.clone())?,
            carry: Vec::new(),
            outgoing: OutputBuffer::default(),
            server_name: None,
            close_notify_queued: false,
            failed: false,
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
        !self.outgoing.is_empty()
    }

    /// True when application data may be encrypted now.
    #[inline]
    pub(crate) fn may_seal(&self) -> bool {
        !self.failed && !self.conn.is_handshaking()
    }

    /// True once rustls reported an error on this connection (only its alert is written).
    #[inline]
    pub(crate) fn has_failed(&self) -> bool {
        self.failed
    }

    /// Copies the carried bytes of an incomplete record to the front of `buffer` (the loop's
    /// scratch buffer) and returns their length: the next read goes right behind them, so the
    /// record is completed in place. The carry is kept until [`feed`](Self::feed) replaces it,
    /// so a read that fails or finds nothing loses nothing.
    #[inline]
    pub(crate) fn restore_carry(&self, buffer: &mut [u8]) -> usize {
        let n = self.carry.len();
        buffer[..n].copy_from_slice(&self.carry);
        n
    }

    /// The bytes carried to the next read (tests and measurements).
    #[cfg(test)]
    pub(crate) fn carried(&self) -> usize {
        self.carry.len()
    }

    /// Processes `buffer` (carried bytes, then one socket read, in the loop's scratch buffer)
    /// record by record: handshake records are answered into the outgoing records, application
    /// data is decrypted in place and gathered into `plain` (the loop's shared plaintext
    /// buffer, at least as large as `buffer`), then handed to `deliver` once (it also gets this
    /// session, e.g. for [`info`](Self::info)); `deliver` returns false when the connection is
    /// closing. An incomplete record at the end is kept for the next read.
    /// Plaintext decrypted before a TLS failure is delivered before the failure is returned.
    pub(crate) fn feed(
        &mut self,
        buffer: &mut [u8],
        plain: &mut [u8],
        pool: &mut BufferPool,
        deliver: impl FnOnce(&mut [u8], &mut TlsSession) -> bool,
    ) -> Fed {
        let handshaking = self.conn.is_handshaking();
        if handshaking {
            SEEN_SERVER_NAME.with(|seen| seen.set(None));
        }
        let mut start = 0;
        let mut filled = 0;
        let step = loop {
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut buffer[start..]);
            let step = match state {
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    let mut step = Step::Continue;
                    while let Some(record) = traffic.next_record() {
                        match record {
                            Ok(record) => {
                                let len = record.payload.len();
                                match plain.get_mut(filled..filled + len) {
                                    Some(space) => space.copy_from_slice(record.payload),
                                    None => {
                                        step = Step::Failed(TlsFailure::PlaintextOverflow);
                                        break;
                                    }
                                }
                                filled += len;
                                start += record.discard;
                            }
                            Err(e) => {
                                step = Step::Failed(e.into());
                                break;
                            }
                        }
                    }
                    step
                }
                // 0-RTT data is only offered when the configuration enables it
                // (`max_early_data_size`); gev does not deliver it (neither did the buffered
                // path), the client resends it after the handshake.
                Ok(ConnectionState::ReadEarlyData(mut early)) => {
                    while let Some(Ok(record)) = early.next_record() {
                        start += record.discard;
                    }
                    Step::Continue
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    if self.outgoing.capacity() == 0 {
                        self.outgoing.install(pool.take());
                    }
                    match encode_record(self.outgoing.vec_mut(), &mut encode) {
                        Ok(()) => Step::Continue,
                        Err(e) => Step::Failed(e),
                    }
                }
                // Encoded records are in `outgoing`, written by the next flush in order.
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    Step::Continue
                }
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => Step::PeerClosed,
                Ok(_) => Step::NeedInput, // BlockedHandshake, WriteTraffic
                Err(e) => Step::Failed(e.into()),
            };
            start += discard;
            if !matches!(step, Step::Continue) {
                break step;
            }
        };
        if handshaking {
            if let Some(name) = SEEN_SERVER_NAME.with(Cell::take) {
                self.server_name = Some(name);
            }
        }
        let ended = match step {
            Step::NeedInput => self.keep_carry(&buffer[start..]),
            Step::PeerClosed => {
                self.carry = Vec::new();
                Fed::PeerClosed
            }
            Step::Failed(failure) => {
                self.fail(&mut buffer[start..], pool);
                Fed::Failed(failure)
            }
            Step::Continue => Fed::Open,
        };
        // Records decrypted before a close_notify or a bad record are still the peer's data.
        if filled > 0 && !deliver(&mut plain[..filled], self) {
            return Fed::Stopped;
        }
        ended
    }

    /// Keeps the unconsumed tail for the next read (freeing the carry when there is none).
    fn keep_carry(&mut self, rest: &[u8]) -> Fed {
        if rest.is_empty() {
            self.carry = Vec::new();
            return Fed::Open;
        }
        // The carry plus one whole record must fit the read buffer (`MIN_READ_BUFFER`).
        let max = MIN_READ_BUFFER - MAX_RECORD;
        if rest.len() > max {
            self.carry = Vec::new();
            self.failed = true;
            self.close_notify_queued = true;
            return Fed::Failed(TlsFailure::CarryTooLarge {
                size: rest.len(),
                max,
            });
        }
        self.carry.clear();
        self.carry.extend_from_slice(rest);
        Fed::Open
    }

    /// After an error: lets rustls encode the alert it queued (if any) into the outgoing
    /// records, and stops all further processing. `rest` is the unconsumed input (rustls's
    /// handshake joiner may point into it).
    fn fail(&mut self, rest: &mut [u8], pool: &mut BufferPool) {
        self.failed = true;
        self.close_notify_queued = true; // a fatal alert is the last record
        self.carry = Vec::new();
        for _ in 0..MAX_WRITE_STEPS {
            let UnbufferedStatus { state, .. } = self.conn.process_tls_records(rest);
            match state {
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    if self.outgoing.capacity() == 0 {
                        self.outgoing.install(pool.take());
                    }
                    if encode_record(self.outgoing.vec_mut(), &mut encode).is_err() {
                        return;
                    }
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => transmit.done(),
                _ => return,
            }
        }
    }

    /// Drives rustls to its `WriteTraffic` state (encoding any records it queued on the way:
    /// tickets, key updates) and runs `write` there with the outgoing record buffer. Returns
    /// `None` when application data cannot be written (handshaking, failed, closed).
    fn with_write_traffic<R>(
        &mut self,
        pool: &mut BufferPool,
        write: impl FnOnce(
            &mut rustls::unbuffered::WriteTraffic<'_, rustls::server::ServerConnectionData>,
            &mut Vec<u8>,
        ) -> R,
    ) -> Result<Option<R>, TlsFailure> {
        if self.failed {
            return Ok(None);
        }
        if self.outgoing.capacity() == 0 {
            self.outgoing.install(pool.take());
        }
        let mut write = Some(write);
        for _ in 0..MAX_WRITE_STEPS {
            // The carry holds only an incomplete record here (every complete one was processed
            // when it was read), so this consumes no input; it is passed so rustls sees the
            // same unconsumed bytes it saw last.
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut self.carry);
            let (step, result) = match state {
                Ok(ConnectionState::WriteTraffic(mut traffic)) => match write.take() {
                    Some(write) => (
                        Step::NeedInput,
                        Some(write(&mut traffic, self.outgoing.vec_mut())),
                    ),
                    None => (Step::NeedInput, None),
                },
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    match encode_record(self.outgoing.vec_mut(), &mut encode) {
                        Ok(()) => (Step::Continue, None),
                        Err(e) => (Step::Failed(e), None),
                    }
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    (Step::Continue, None)
                }
                // Records a read left unprocessed because the connection was closing: dropped.
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    while traffic.next_record().is_some() {}
                    (Step::Continue, None)
                }
                Ok(ConnectionState::PeerClosed) => (Step::Continue, None),
                Ok(_) => (Step::NeedInput, None), // BlockedHandshake, Closed
                Err(e) => (Step::Failed(e.into()), None),
            };
            if discard > 0 {
                self.carry.drain(..discard.min(self.carry.len()));
            }
            match step {
                Step::Continue => {}
                Step::Failed(failure) => {
                    self.failed = true;
                    return Err(failure);
                }
                _ => return Ok(result),
            }
        }
        Ok(None)
    }

    /// Encrypts `plaintext` into records behind the outgoing ones (call only when
    /// [`may_seal`](Self::may_seal)); returns the bytes taken: all of them, or 0 if rustls
    /// cannot send application data now.
    pub(crate) fn seal(
        &mut self,
        plaintext: &[u8],
        pool: &mut BufferPool,
    ) -> Result<usize, TlsFailure> {
        let records = plaintext.len() / 16_384 + 1;
        let guess = plaintext.len() + records * RECORD_OVERHEAD_GUESS;
        let sealed = self.with_write_traffic(pool, |traffic, out| {
            append_with(
                out,
                guess,
                |space| traffic.encrypt(plaintext, space),
                |e| match e {
                    EncryptError::InsufficientSize(size) => Some(size.required_size),
                    _ => None,
                },
            )
        })?;
        if self.outgoing.is_empty() {
            pool.give(self.outgoing.release()); // nothing sealed: lend the storage back
        }
        match sealed {
            Some(Ok(_)) => Ok(plaintext.len()),
            Some(Err(e)) => {
                self.failed = true;
                Err(TlsFailure::Encrypt(e))
            }
            None => Ok(0),
        }
    }

    /// Writes the outgoing records to `stream` with one `write`; their storage goes back to
    /// `pool` once all are written.
    #[inline]
    pub(crate) fn write_to(
        &mut self,
        stream: &crate::transport::Stream,
        pool: &mut BufferPool,
    ) -> io::Result<usize> {
        let mut writer = stream;
        let n = writer.write(self.outgoing.unwritten())?;
        self.outgoing.advance(n);
        if self.outgoing.is_empty() {
            pool.give(self.outgoing.release());
        } else {
            self.outgoing.compact();
        }
        Ok(n)
    }

    /// Queues `close_notify` behind the outgoing records (once; nothing after a failure, nor
    /// before the handshake completed: there is no session to close then).
    pub(crate) fn queue_close_notify(&mut self, pool: &mut BufferPool) {
        if self.close_notify_queued {
            return;
        }
        self.close_notify_queued = true;
        let queued = self.with_write_traffic(pool, |traffic, out| {
            append_with(
                out,
                RECORD_OVERHEAD_GUESS,
                |space| traffic.queue_close_notify(space),
                |e| match e {
                    EncryptError::InsufficientSize(size) => Some(size.required_size),
                    _ => None,
                },
            )
        });
        if !matches!(queued, Ok(Some(Ok(_)))) {
            tracing::trace!("close_notify not sent (handshake incomplete or TLS failed)");
        }
        if self.outgoing.is_empty() {
            pool.give(self.outgoing.release());
        }
    }

    /// What the completed handshake agreed (moves the noted SNI into it).
    pub(crate) fn info(&mut self) -> TlsInfo {
        TlsInfo {
            alpn_protocol: self.conn.alpn_protocol().map(<[u8]>::to_vec),
            server_name: self.server_name.take().map(String::from),
            protocol_version: self.conn.protocol_version(),
            resumed: self.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        }
    }

    /// After a TLS failure reported elsewhere: no `close_notify` follows.
    pub(crate) fn suppress_close_notify(&mut self) {
        self.close_notify_queued = true;
    }

    /// True once `close_notify` was queued (or suppressed after a failure).
    pub(crate) fn close_notify_queued(&self) -> bool {
        self.close_notify_queued
    }
}

/// Copies one record rustls queued (handshake, alert, ticket, key update) behind `out`.
fn encode_record(
    out: &mut Vec<u8>,
    encode: &mut rustls::unbuffered::EncodeTlsData<'_, rustls::server::ServerConnectionData>,
) -> Result<(), TlsFailure> {
    append_with(
        out,
        0, // the first call reports the exact size
        |space| encode.encode(space),
        |e| match e {
            EncodeError::InsufficientSize(size) => Some(size.required_size),
            EncodeError::AlreadyEncoded => None,
        },
    )
    .map(|_| ())
    .map_err(TlsFailure::Encode)
}

/// Appends what `fill` writes behind `out`, first offering `guess` bytes of space and, if rustls
/// says it needs more (`required`), exactly that (rustls leaves the space untouched on such an
/// error). Space is zero-filled only where `out` grows: its storage is reused from the pool.
fn append_with<E>(
    out: &mut Vec<u8>,
    guess: usize,
    mut fill: impl FnMut(&mut [u8]) -> Result<usize, E>,
    required: impl Fn(&E) -> Option<usize>,
) -> Result<usize, E> {
    let start = out.len();
    let mut size = guess;
    loop {
        out.resize(start + size, 0);
        match fill(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(n);
            }
            Err(e) => match required(&e) {
                Some(needed) if needed > size => size = needed,
                _ => {
                    out.truncate(start);
                    return Err(e);
                }
            },
        }
    }
}

thread_local! {
    /// The SNI of the ClientHello the loop thread's rustls last resolved a certificate for.
    static SEEN_SERVER_NAME: Cell<Option<Box<str>>> = const { Cell::new(None) };
}

/// A certificate resolver that notes the client's SNI for [`TlsInfo::server_name`] (the
/// unbuffered server connection does not expose it) and then asks the configured resolver.
#[derive(Debug)]
struct ServerNameRecorder {
    inner: Arc<dyn ResolvesServerCert>,
}

impl ResolvesServerCert for ServerNameRecorder {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = client_hello.server_name().map(Box::from);
        SEEN_SERVER_NAME.with(|seen| seen.set(name));
        self.inner.resolve(client_hello)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }
}

/// The configuration a loop's sessions use: the user's, with the certificate resolver wrapped
/// to note the SNI. Everything else (ticketer, session cache, ALPN, versions) is shared with
/// the user's configuration, so resumption works across loops.
pub(crate) fn loop_config(config: &Arc<ServerConfig>) -> Arc<ServerConfig> {
    let mut wrapped = ServerConfig::clone(config);
    wrapped.cert_resolver = Arc::new(ServerNameRecorder {
        inner: config.cert_resolver.clone(),
    });
    Arc::new(wrapped)
}

#[cfg(test)]
impl TlsSession {
    /// The records waiting to be written, taken out (tests play the socket).
    fn take_outgoing(&mut self) -> Vec<u8> {
        let bytes = self.outgoing.unwritten().to_vec();
        self.outgoing.release();
        bytes
    }
}

#[cfg(test)]
mod tests {
    //! Drives a `TlsSession` against an in-memory rustls client as the loop does (carried bytes
    //! restored in front of each "read"), with the ciphertext cut at arbitrary points.
    use super::*;
    use crate::tls::{server_config, SelfSigned};
    use proptest::prelude::*;
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore};
    use std::io::Read;

    fn server_and_client_config(
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> (Arc<ServerConfig>, Arc<ClientConfig>) {
        let cert = SelfSigned::generate(&["localhost"]).unwrap();
        let mut config = server_config(vec![cert.cert_der()], cert.key_der()).unwrap();
        config.alpn_protocols = vec![b"gev-test".to_vec()];
        let mut roots = RootCertStore::empty();
        roots.add(cert.cert_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client_config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client_config.alpn_protocols = vec![b"gev-test".to_vec()];
        (loop_config(&Arc::new(config)), Arc::new(client_config))
    }

    fn pair_with(
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> (TlsSession, ClientConnection) {
        let (server, client) = server_and_client_config(versions);
        let mut client =
            ClientConnection::new(client, ServerName::try_from("localhost").unwrap()).unwrap();
        client.set_buffer_limit(None);
        (TlsSession::new(&server).unwrap(), client)
    }

    fn pair() -> (TlsSession, ClientConnection) {
        pair_with(rustls::DEFAULT_VERSIONS)
    }

    fn pool() -> BufferPool {
        BufferPool::new(4, 1 << 20)
    }

    /// Ciphertext the client has queued.
    fn client_output(client: &mut ClientConnection) -> Vec<u8> {
        let mut bytes = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut bytes).unwrap();
        }
        bytes
    }

    /// Hands the server's records to the client; returns the plaintext the client read.
    fn to_client(server: &mut TlsSession, client: &mut ClientConnection) -> Vec<u8> {
        let records = server.take_outgoing();
        let mut rest = records.as_slice();
        let mut text = Vec::new();
        while !rest.is_empty() {
            client.read_tls(&mut rest).unwrap();
            client.process_new_packets().unwrap();
            let _ = client.reader().read_to_end(&mut text);
        }
        text
    }

    /// One "read" as the loop does it: the carry first, then `bytes`, in a scratch buffer of
    /// `MIN_READ_BUFFER`; returns what `feed` returned and appends the plaintext to `got`.
    fn read(server: &mut TlsSession, bytes: &[u8], got: &mut Vec<u8>) -> Fed {
        let mut scratch = vec![0u8; MIN_READ_BUFFER];
        let mut plain = vec![0u8; MIN_READ_BUFFER];
        let carried = server.restore_carry(&mut scratch);
        scratch[carried..carried + bytes.len()].copy_from_slice(bytes);
        server.feed(
            &mut scratch[..carried + bytes.len()],
            &mut plain,
            &mut pool(),
            |data, _| {
                got.extend_from_slice(data);
                true
            },
        )
    }

    /// Feeds `bytes` in pieces cut at `cuts` (each piece at most what a read would take);
    /// returns the plaintext delivered and whether the peer closed.
    fn feed_in_pieces(server: &mut TlsSession, bytes: &[u8], cuts: &[usize]) -> (Vec<u8>, bool) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        let room = MIN_READ_BUFFER - MAX_RECORD;
        cuts.extend((room..bytes.len()).step_by(room));
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut got = Vec::new();
        let mut start = 0;
        let mut closed = false;
        for cut in cuts {
            match read(server, &bytes[start..cut], &mut got) {
                Fed::Open => {}
                Fed::PeerClosed => closed = true,
                other => panic!("unexpected {other:?}"),
            }
            assert!(server.carried() <= MAX_RECORD, "carry {}", server.carried());
            start = cut;
        }
        (got, closed)
    }

    fn handshake(server: &mut TlsSession, client: &mut ClientConnection) {
        for _ in 0..4 {
            let hello = client_output(client);
            let (got, _) = feed_in_pieces(server, &hello, &[]);
            assert!(got.is_empty());
            to_client(server, client);
            if !server.is_handshaking() && !client.is_handshaking() {
                return;
            }
        }
        panic!("handshake did not complete");
    }

    #[test]
    fn handshake_alpn_sni_data_and_close_notify() {
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
        let (got, closed) = feed_in_pieces(&mut server, &bytes, &[]);
        assert_eq!(got, b"hello over tls");
        assert!(closed);
        assert_eq!(server.carried(), 0);
        assert_eq!(server.seal(b"reply", &mut pool()).unwrap(), 5);
        server.queue_close_notify(&mut pool());
        server.queue_close_notify(&mut pool());
        assert_eq!(to_client(&mut server, &mut client), b"reply");
        let mut rest = Vec::new();
        assert_eq!(
            client.reader().read_to_end(&mut rest).unwrap(),
            0,
            "close_notify read"
        );
    }

    #[test]
    fn tls12_handshake_and_echo() {
        let (mut server, mut client) = pair_with(&[&rustls::version::TLS12]);
        handshake(&mut server, &mut client);
        let info = server.info();
        assert_eq!(
            info.protocol_version,
            Some(rustls::ProtocolVersion::TLSv1_2)
        );
        assert_eq!(info.server_name.as_deref(), Some("localhost"));
        client.writer().write_all(&[9u8; 40_000]).unwrap();
        let (got, _) = feed_in_pieces(&mut server, &client_output(&mut client), &[7, 20_000]);
        assert_eq!(got, vec![9u8; 40_000]);
        assert_eq!(server.seal(&got, &mut pool()).unwrap(), got.len());
        assert_eq!(to_client(&mut server, &mut client), got);
    }

    #[test]
    fn one_byte_reads_carry_at_most_one_record_and_free_it() {
        let (mut server, mut client) = pair();
        handshake(&mut server, &mut client);
        let message: Vec<u8> = (0..16_384u32).map(|i| i as u8).collect();
        client.writer().write_all(&message).unwrap();
        let bytes = client_output(&mut client);
        let mut got = Vec::new();
        let mut most = 0;
        for byte in bytes.chunks(1) {
            assert!(matches!(read(&mut server, byte, &mut got), Fed::Open));
            most = most.max(server.carried());
        }
        assert_eq!(got, message);
        assert!(most < MAX_RECORD, "carried up to {most}");
        assert_eq!(server.carried(), 0);
        assert_eq!(server.carry.capacity(), 0, "an empty carry holds no memory");
    }

    #[test]
    fn handshake_messages_spread_over_many_records_and_one_byte_reads() {
        // A client that cuts every record to 64 bytes: its ClientHello and Finished span
        // several records, which rustls joins in place in the carried bytes.
        let (server_config, client_config) = server_and_client_config(rustls::DEFAULT_VERSIONS);
        let mut client_config = (*client_config).clone();
        client_config.max_fragment_size = Some(64);
        let mut client = ClientConnection::new(
            Arc::new(client_config),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let mut server = TlsSession::new(&server_config).unwrap();
        for _ in 0..4 {
            let flight = client_output(&mut client);
            let mut got = Vec::new();
            for byte in flight.chunks(1) {
                assert!(matches!(read(&mut server, byte, &mut got), Fed::Open));
            }
            assert!(got.is_empty());
            to_client(&mut server, &mut client);
            if !server.is_handshaking() && !client.is_handshaking() {
                break;
            }
        }
        assert!(!server.is_handshaking(), "handshake did not complete");
        assert_eq!(server.info().server_name.as_deref(), Some("localhost"));
        client.writer().write_all(&[5u8; 1000]).unwrap();
        let (got, _) = feed_in_pieces(&mut server, &client_output(&mut client), &[1, 2, 3]);
        assert_eq!(got, vec![5u8; 1000]);
        assert_eq!(server.carried(), 0);
    }

    #[test]
    fn key_update_from_the_client_keeps_both_directions_working() {
        let (mut server, mut client) = pair();
        handshake(&mut server, &mut client);
        for round in 0..3u8 {
            client.refresh_traffic_keys().unwrap();
            client.writer().write_all(&[round; 100]).unwrap();
            let (got, closed) = feed_in_pieces(&mut server, &client_output(&mut client), &[]);
            assert_eq!(got, vec![round; 100]);
            assert!(!closed);
            server.seal(&got, &mut pool()).unwrap();
            assert_eq!(to_client(&mut server, &mut client), got);
        }
    }

    #[test]
    fn plaintext_on_the_tls_port_fails_with_an_alert() {
        let (mut server, _client) = pair();
        let mut got = Vec::new();
        let fed = read(&mut server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &mut got);
        assert!(matches!(fed, Fed::Failed(_)), "{fed:?}");
        assert!(server.wants_write(), "an alert is queued");
        assert!(server.has_failed() && !server.may_seal());
    }

    #[test]
    fn an_oversized_record_header_fails_at_once() {
        let (mut server, mut client) = pair();
        handshake(&mut server, &mut client);
        let mut got = Vec::new();
        // An application-data record announcing 0xffff bytes: rejected from its header alone.
        let fed = read(
            &mut server,
            &[0x17, 0x03, 0x03, 0xff, 0xff, 1, 2, 3],
            &mut got,
        );
        assert!(
            matches!(fed, Fed::Failed(TlsFailure::Protocol(_))),
            "{fed:?}"
        );
        assert_eq!(server.carried(), 0);
        assert!(server.wants_write(), "record_overflow alert queued");
    }

    #[test]
    fn a_garbage_record_after_the_handshake_fails_after_the_good_data() {
        let (mut server, mut client) = pair();
        handshake(&mut server, &mut client);
        client.writer().write_all(b"before").unwrap();
        let mut bytes = client_output(&mut client);
        // An application-data record of 64 random-looking bytes (bad MAC).
        bytes.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x40]);
        bytes.extend((0..64u8).map(|i| i.wrapping_mul(37)));
        let mut got = Vec::new();
        let fed = read(&mut server, &bytes, &mut got);
        assert!(
            matches!(fed, Fed::Failed(TlsFailure::Protocol(_))),
            "{fed:?}"
        );
        assert_eq!(got, b"before", "data before the bad record is delivered");
    }

    #[test]
    fn stop_is_reported() {
        let (mut server, mut client) = pair();
        handshake(&mut server, &mut client);
        client.writer().write_all(&[7u8; 100]).unwrap();
        let mut bytes = client_output(&mut client);
        let mut scratch = vec![0u8; MIN_READ_BUFFER];
        let mut plain = vec![0u8; MIN_READ_BUFFER];
        let n = bytes.len();
        scratch[..n].copy_from_slice(&bytes);
        bytes.clear();
        let fed = server.feed(&mut scratch[..n], &mut plain, &mut pool(), |_, _| false);
        assert!(matches!(fed, Fed::Stopped));
    }

    #[test]
    fn large_replies_are_sealed_in_records() {
        let (mut server, mut client) = pair();
        handshake(&mut server, &mut client);
        let reply: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(server.seal(&reply, &mut pool()).unwrap(), reply.len());
        assert_eq!(to_client(&mut server, &mut client), reply);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Any cut of the ciphertext delivers the same bytes and carries less than a record.
        #[test]
        fn any_fragmentation_delivers_every_byte(
            messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..20_000), 1..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let (mut server, mut client) = pair();
            handshake(&mut server, &mut client);
            let mut expected = Vec::new();
            for message in &messages {
                client.writer().write_all(message).unwrap();
                expected.extend_from_slice(message);
            }
            let bytes = client_output(&mut client);
            let (got, closed) = feed_in_pieces(&mut server, &bytes, &cuts);
            prop_assert!(!closed);
            prop_assert_eq!(got, expected);
            prop_assert_eq!(server.carried(), 0);
        }
    }
}
