//! TLS on the client side: the rustls configuration a run shares ([`TlsSettings`]), the socket
//! a connection owns ([`Stream`]: plain TCP or TCP under a `rustls::ClientConnection`), and what
//! each worker counts about handshakes ([`TlsRecorder`]).
//!
//! Where it sits in the data path: between the worker's mio socket and the framing. The worker
//! still sees readiness events for the TCP socket; a TLS stream turns them into progress of the
//! rustls state machine (`read_tls` -> `process_new_packets` -> `write_tls`), never blocking the
//! loop. During the handshake the worker calls [`Stream::drive_handshake`] on every event; after
//! it, [`Stream`]'s `Read`/`Write` hand plaintext in and out exactly as the plain socket does, so
//! encode, decode and record are unchanged.
//!
//! Two rules keep edge-triggered epoll safe: a read returns fewer bytes than asked only after the
//! socket said `WouldBlock` (or EOF), so the worker's "short read means drained" shortcut holds;
//! and records rustls could not write yet stay in rustls until the next writable event
//! ([`Stream::wants_write`] tells the worker to flush even when its own output buffer is empty).
//!
//! Cryptography is rustls's `ring` provider, the one gev and the tokio-rustls reference use.
//! Certificates are verified against `--ca FILE`, else the system bundle (`SSL_CERT_FILE`, or the
//! usual Debian/Red Hat paths); `--insecure` skips verification of the chain and name but still
//! checks the handshake signatures.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, RootCertStore};

use crate::record::{self, new_histogram};
use crate::summary::TlsSummary;
use crate::tls_sessions::TicketStore;

/// Where the system's trust anchors usually are, tried in order when neither `--ca` nor
/// `SSL_CERT_FILE` names a file.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Against the PEM certificates of `--ca FILE`.
    Ca(PathBuf),
    /// Against the system bundle found at this path.
    System(PathBuf),
    /// Not at all (`--insecure`); handshake signatures are still checked.
    Insecure,
}

/// The TLS options of a run as the user gave them (before the rustls config is built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    pub verification: Verification,
    /// The name sent as SNI and checked against the certificate; an IP address sends no SNI
    /// and is checked against the certificate's IP addresses.
    pub server_name: String,
    /// ALPN protocols offered, in preference order (empty: no ALPN extension).
    pub alpn: Vec<String>,
    /// Whether sessions are cached and resumed (`--tls-resume on`).
    pub resume: bool,
    /// Open, handshake and close connections instead of sending requests.
    pub handshake_only: bool,
    /// The one ALPN protocol the framing speaks (`http/1.1` for http and WebSocket); a server
    /// choosing another is an error. `None` for raw and length framings.
    pub required_alpn: Option<String>,
}

/// Why the TLS options cannot be turned into a client configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read --ca {path}: {reason}; give a PEM file with the CA certificate(s) that signed the server's certificate")]
    CaFile { path: String, reason: String },
    #[error(
        "--ca {0} holds no certificate; give a PEM file with -----BEGIN CERTIFICATE----- blocks"
    )]
    CaEmpty(String),
    #[error("no system CA bundle found (tried SSL_CERT_FILE and {}); pass --ca FILE or --insecure", SYSTEM_BUNDLES.join(", "))]
    NoSystemBundle,
    #[error("invalid TLS server name {0:?} (from --sni or the TARGET host); give a DNS name or an IP address")]
    ServerName(String),
    #[error("cannot build the TLS client configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The run's TLS client: one rustls configuration (and so one session cache) shared by every
/// worker, and the server name every connection uses.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub options: TlsOptions,
    pub client: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

impl TlsSettings {
    /// Build the rustls configuration: trust anchors, ALPN, resumption.
    pub fn new(options: TlsOptions) -> Result<TlsSettings, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let mut client = match &options.verification {
            Verification::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth(),
            Verification::Ca(path) | Verification::System(path) => {
                let is_ca = matches!(options.verification, Verification::Ca(_));
                builder
                    .with_root_certificates(load_roots(path, is_ca)?)
                    .with_no_client_auth()
            }
        };
        client.alpn_protocols = options.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        client.resumption = if options.resume {
            // Enough TLS 1.3 tickets that every reconnect resumes (see tls_sessions.rs).
            Resumption::store(Arc::new(TicketStore::new()))
        } else {
            Resumption::disabled()
        };
        let server_name = ServerName::try_from(options.server_name.clone())
            .map_err(|_| TlsSetupError::ServerName(options.server_name.clone()))?;
        Ok(TlsSettings {
            options,
            client: Arc::new(client),
            server_name,
        })
    }

    /// A new client connection (ClientHello queued, nothing sent yet).
    fn connection(&self) -> io::Result<ClientConnection> {
        let mut conn = ClientConnection::new(Arc::clone(&self.client), self.server_name.clone())
            .map_err(tls_io_error)?;
        // The worker bounds what it queues (pipeline x payload), so rustls need not refuse
        // plaintext; a refusal would look like a zero-length write.
        conn.set_buffer_limit(None);
        Ok(conn)
    }
}

/// Find the system bundle: `SSL_CERT_FILE`, then the usual paths.
pub fn system_bundle() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Some(path);
        }
    }
    SYSTEM_BUNDLES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn load_roots(path: &Path, is_ca: bool) -> Result<RootCertStore, TlsSetupError> {
    let shown = path.display().to_string();
    let file_error = |reason: String| TlsSetupError::CaFile {
        path: shown.clone(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| file_error(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| file_error(e.to_string()))?;
        // A system bundle may hold a certificate webpki cannot parse; skip it there, but a
        // --ca file the user named must be entirely usable.
        if let Err(e) = roots.add(cert) {
            if is_ca {
                return Err(file_error(e.to_string()));
            }
        }
    }
    if roots.is_empty() {
        return Err(TlsSetupError::CaEmpty(shown));
    }
    Ok(roots)
}

/// `--insecure`: accept any certificate chain and name, but check the handshake signatures so
/// the cost of a handshake is the same as with verification minus the chain walk.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A rustls error as an `io::Error` the worker can classify
/// ([`crate::error_kind::ErrorKind::from_io`] looks inside).
pub fn tls_io_error(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// The server chose an ALPN protocol the framing does not speak.
#[derive(Debug, thiserror::Error)]
#[error("the server chose ALPN protocol {chosen:?}, the framing speaks {required:?}")]
pub struct AlpnMismatch {
    pub chosen: String,
    pub required: String,
}

/// A connection's socket: plain TCP, or TCP under TLS.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
    /// A Unix stream socket (`unix:/path` targets; see `unix.rs`). No TLS over it.
    Unix(mio::net::UnixStream),
}

/// TCP under a rustls client connection.
#[derive(Debug)]
pub struct TlsStream {
    tcp: TcpStream,
    conn: ClientConnection,
    /// When the TCP connect completed and the handshake began, ns on the run clock.
    pub handshake_started: u64,
}

/// What a completed handshake negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeInfo {
    pub resumed: bool,
    pub version: String,
    pub cipher_suite: String,
    pub alpn: Option<String>,
}

impl Stream {
    /// Start a non-blocking connect; with `tls`, a client connection with its ClientHello
    /// queued (sent once TCP is up).
    pub fn connect(addr: SocketAddr, tls: Option<&TlsSettings>) -> io::Result<Stream> {
        let tcp = TcpStream::connect(addr)?;
        Ok(match tls {
            None => Stream::Plain(tcp),
            Some(settings) => Stream::Tls(Box::new(TlsStream {
                tcp,
                conn: settings.connection()?,
                handshake_started: 0,
            })),
        })
    }

    /// The TCP socket underneath (registration, connect status, socket options).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &tls.tcp,
            // Unix connections are registered and checked by `unix.rs`, never through here.
            Stream::Unix(_) => unreachable!("tcp() on a Unix stream"),
        }
    }

    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &mut tls.tcp,
            Stream::Unix(_) => unreachable!("tcp_mut() on a Unix stream"),
        }
    }

    pub fn tls(&self) -> Option<&TlsStream> {
        match self {
            Stream::Plain(_) | Stream::Unix(_) => None,
            Stream::Tls(tls) => Some(tls),
        }
    }

    pub fn tls_mut(&mut self) -> Option<&mut TlsStream> {
        match self {
            Stream::Plain(_) | Stream::Unix(_) => None,
            Stream::Tls(tls) => Some(tls),
        }
    }

    /// A TLS stream whose handshake has not completed.
    pub fn tls_handshaking(&self) -> bool {
        self.tls().is_some_and(|t| t.conn.is_handshaking())
    }

    /// TLS records queued in rustls that the socket has not taken yet.
    pub fn wants_write(&self) -> bool {
        self.tls().is_some_and(|t| t.conn.wants_write())
    }

    /// Push queued TLS records to the socket until it would block (no-op for plain TCP).
    pub fn write_pending(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) | Stream::Unix(_) => Ok(()),
            Stream::Tls(tls) => tls.write_pending(),
        }
    }
}

impl TlsStream {
    /// The handshake has not completed.
    pub fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Advance the handshake with whatever the socket has: `Ok(true)` once it is complete,
    /// `Ok(false)` when it waits for the server (or for the socket to take our records), `Err`
    /// when it failed (a rustls error inside an `InvalidData` io::Error, or the socket's own).
    pub fn drive_handshake(&mut self) -> io::Result<bool> {
        loop {
            self.write_pending()?;
            if !self.conn.is_handshaking() {
                return Ok(true);
            }
            if self.conn.wants_write() {
                return Ok(false);
            }
            match self.conn.read_tls(&mut self.tcp) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection during the TLS handshake",
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.process()?;
        }
    }

    /// Read whatever the socket holds into rustls and process it, without taking plaintext
    /// (used while waiting for a session ticket). Returns `Ok(false)` on EOF.
    pub fn pump(&mut self) -> io::Result<bool> {
        loop {
            match self.conn.read_tls(&mut self.tcp) {
                Ok(0) => {
                    self.process()?;
                    return Ok(false);
                }
                Ok(_) => self.process()?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn process(&mut self) -> io::Result<()> {
        if let Err(e) = self.conn.process_new_packets() {
            // rustls queued an alert telling the server why; send it if the socket takes it.
            let _ = self.write_pending();
            return Err(tls_io_error(e));
        }
        Ok(())
    }

    fn write_pending(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// What the completed handshake negotiated.
    pub fn info(&self) -> HandshakeInfo {
        let version = match self.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(other) => format!("{other:?}"),
            None => "unknown".to_string(),
        };
        HandshakeInfo {
            resumed: self.conn.handshake_kind() == Some(HandshakeKind::Resumed),
            version,
            cipher_suite: self
                .conn
                .negotiated_cipher_suite()
                .map_or_else(|| "unknown".to_string(), |s| format!("{:?}", s.suite())),
            alpn: self
                .conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
        }
    }

    /// Whether the connection holds a session ticket for the next handshake, or never will:
    /// TLS 1.2 delivers its ticket inside the handshake, TLS 1.3 after it.
    pub fn ticket_settled(&self) -> bool {
        self.conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3)
            || self.conn.tls13_tickets_received() > 0
    }

    /// Queue close_notify and try once to send it (the socket is closed right after).
    pub fn close_notify(&mut self) {
        self.conn.send_close_notify();
        let _ = self.write_pending();
    }
}

impl Read for Stream {
    /// Plaintext from the connection. For TLS, fills `buf` from decrypted records and reads the
    /// socket until it would block, so a short result means the socket is drained.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let tls = match self {
            Stream::Plain(tcp) => return tcp.read(buf),
            Stream::Unix(unix) => return unix.read(buf),
            Stream::Tls(tls) => tls,
        };
        let mut filled = 0;
        loop {
            match tls.conn.reader().read(&mut buf[filled..]) {
                // close_notify (or nothing more to give, with `buf` full).
                Ok(0) => return Ok(filled),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        return Ok(filled);
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if filled > 0 => {
                    let _ = e;
                    return Ok(filled);
                }
                Err(e) => return Err(e),
            }
            match tls.conn.read_tls(&mut tls.tcp) {
                // EOF is now known to rustls: the reader above says whether it was clean.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if filled > 0 => {
                    let _ = e;
                    return Ok(filled);
                }
                Err(e) => return Err(e),
            }
            tls.process()?;
            // A KeyUpdate or an alert may need an answer.
            tls.write_pending()?;
        }
    }
}

impl Write for Stream {
    /// Plaintext to the connection. For TLS, rustls takes all of it (no buffer limit) and as many
    /// records as the socket accepts are written now; the rest waits for a writable event.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Unix(unix) => unix.write(buf),
            Stream::Tls(tls) => {
                let n = tls.conn.writer().write(buf)?;
                tls.write_pending()?;
                if n == 0 && !buf.is_empty() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Unix(unix) => unix.flush(),
            Stream::Tls(tls) => tls.write_pending(),
        }
    }
}

/// What one worker counts about TLS handshakes (all of them, warm-up included, as
/// `connections.opened` does).
#[derive(Debug, Clone)]
pub struct TlsRecorder {
    /// From TCP connected to handshake complete, ns.
    pub handshake: Histogram<u64>,
    pub handshakes: u64,
    pub resumed: u64,
    pub versions: BTreeMap<String, u64>,
    pub cipher_suites: BTreeMap<String, u64>,
    pub alpn: BTreeMap<String, u64>,
    /// Handshake-only: connections closed after waiting `--timeout` for a session ticket.
    pub tickets_missing: u64,
}

impl Default for TlsRecorder {
    fn default() -> Self {
        TlsRecorder {
            handshake: new_histogram(),
            handshakes: 0,
            resumed: 0,
            versions: BTreeMap::new(),
            cipher_suites: BTreeMap::new(),
            alpn: BTreeMap::new(),
            tickets_missing: 0,
        }
    }
}

impl TlsRecorder {
    pub fn handshake_done(&mut self, handshake_ns: u64, info: &HandshakeInfo) {
        self.handshake.saturating_record(handshake_ns);
        self.handshakes += 1;
        self.resumed += u64::from(info.resumed);
        *self.versions.entry(info.version.clone()).or_default() += 1;
        *self
            .cipher_suites
            .entry(info.cipher_suite.clone())
            .or_default() += 1;
        let alpn = info.alpn.clone().unwrap_or_else(|| "none".to_string());
        *self.alpn.entry(alpn).or_default() += 1;
    }

    pub fn merge(&mut self, other: &TlsRecorder) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.handshake.add(&other.handshake);
        self.handshakes += other.handshakes;
        self.resumed += other.resumed;
        self.tickets_missing += other.tickets_missing;
        for (mine, theirs) in [
            (&mut self.versions, &other.versions),
            (&mut self.cipher_suites, &other.cipher_suites),
            (&mut self.alpn, &other.alpn),
        ] {
            for (key, n) in theirs {
                *mine.entry(key.clone()).or_default() += n;
            }
        }
    }

    /// The summary's `tls` section. `failed` is the count of TLS error kinds;
    /// `handshakes_per_sec` is set for a handshake-only run.
    pub fn summary(
        &self,
        options: &TlsOptions,
        failed: u64,
        handshakes_per_sec: Option<f64>,
    ) -> TlsSummary {
        let (verification, ca_file) = match &options.verification {
            Verification::Ca(p) => ("ca", Some(p.display().to_string())),
            Verification::System(p) => ("system", Some(p.display().to_string())),
            Verification::Insecure => ("insecure", None),
        };
        TlsSummary {
            handshake_only: options.handshake_only,
            verification: verification.to_string(),
            ca_file,
            server_name: options.server_name.clone(),
            alpn_offered: options.alpn.clone(),
            resume: options.resume,
            handshakes: self.handshakes,
            resumed: self.resumed,
            full: self.handshakes - self.resumed,
            failed,
            handshakes_per_sec,
            handshake_us: record::percentiles(&self.handshake),
            versions: self.versions.clone(),
            cipher_suites: self.cipher_suites.clone(),
            alpn: self.alpn.clone(),
            tickets_missing: self.tickets_missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(verification: Verification) -> TlsOptions {
        TlsOptions {
            verification,
            server_name: "localhost".into(),
            alpn: vec!["http/1.1".into()],
            resume: true,
            handshake_only: false,
            required_alpn: None,
        }
    }

    #[test]
    fn insecure_builds_with_alpn_and_resumption() {
        let settings = TlsSettings::new(options(Verification::Insecure)).unwrap();
        assert_eq!(settings.client.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(settings.connection().is_ok());
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = TlsSettings::new(options(Verification::Ca(missing.clone())))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = TlsSettings::new(options(Verification::Ca(empty)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds no certificate"), "{err}");
    }

    #[test]
    fn bad_server_name_is_rejected() {
        let mut o = options(Verification::Insecure);
        o.server_name = "not a name!".into();
        assert!(matches!(
            TlsSettings::new(o),
            Err(TlsSetupError::ServerName(_))
        ));
    }

    #[test]
    fn recorder_merges_counts_and_maps() {
        let info = HandshakeInfo {
            resumed: true,
            version: "TLSv1.3".into(),
            cipher_suite: "TLS13_AES_128_GCM_SHA256".into(),
            alpn: None,
        };
        let mut a = TlsRecorder::default();
        a.handshake_done(2_000_000, &info);
        let mut b = TlsRecorder::default();
        b.handshake_done(
            3_000_000,
            &HandshakeInfo {
                resumed: false,
                ..info.clone()
            },
        );
        a.merge(&b);
        let s = a.summary(&options(Verification::Insecure), 1, Some(5.0));
        assert_eq!((s.handshakes, s.resumed, s.full, s.failed), (2, 1, 1, 1));
        assert_eq!(s.versions["TLSv1.3"], 2);
        assert_eq!(s.alpn["none"], 2);
        assert_eq!(s.handshake_us.count, 2);
        assert_eq!(s.verification, "insecure");
    }
}
