//! TLS test helpers shared by the TLS end-to-end tests: certificates written to PEM files, a
//! blocking rustls client that sends its records cut at random points (so the server sees
//! records split across reads, as TCP may deliver them), and a reader of the close counters of
//! the metrics endpoint.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gev::tls::rustls::pki_types::{CertificateDer, ServerName};
use gev::tls::rustls::{self, ClientConfig, ClientConnection, RootCertStore};
use gev::tls::SelfSigned;
use rand::Rng;

pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A self-signed certificate for loopback names, with its PEM files in a temporary directory.
pub struct CertFiles {
    pub cert: SelfSigned,
    pub dir: tempfile::TempDir,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl CertFiles {
    pub fn new() -> CertFiles {
        Self::from(SelfSigned::generate(&["localhost", "127.0.0.1"]).expect("generate"))
    }

    pub fn expired() -> CertFiles {
        Self::from(SelfSigned::generate_expired(&["localhost", "127.0.0.1"]).expect("generate"))
    }

    fn from(cert: SelfSigned) -> CertFiles {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, cert.cert_pem()).expect("write cert");
        std::fs::write(&key_path, cert.key_pem()).expect("write key");
        CertFiles {
            cert,
            dir,
            cert_path,
            key_path,
        }
    }

    /// `--tls-cert FILE --tls-key FILE` for an example binary.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert_path.display().to_string(),
            "--tls-key".into(),
            self.key_path.display().to_string(),
        ]
    }

    /// A server configuration with this certificate (resumption on, no ALPN).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::new(
            gev::tls::server_config(vec![self.cert.cert_der()], self.cert.key_der())
                .expect("config"),
        )
    }
}

/// A client configuration trusting `roots` (ring provider, like the server), offering TLS 1.3
/// and 1.2 and `alpn`.
pub fn client_config(roots: &[CertificateDer<'static>], alpn: &[&[u8]]) -> Arc<ClientConfig> {
    client_config_with_versions(roots, alpn, rustls::DEFAULT_VERSIONS)
}

/// [`client_config`] offering only `versions` (e.g. `&[&rustls::version::TLS12]`).
pub fn client_config_with_versions(
    roots: &[CertificateDer<'static>],
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A blocking TLS client over a loopback socket.
pub struct TlsClient {
    pub tcp: TcpStream,
    pub tls: ClientConnection,
}

impl TlsClient {
    /// Connects to `addr` as `localhost` and completes the handshake.
    pub fn connect(
        addr: SocketAddr,
        config: &Arc<ClientConfig>,
    ) -> Result<TlsClient, rustls::Error> {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        tcp.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        tcp.set_nodelay(true).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = ClientConnection::new(config.clone(), name).expect("client connection");
        tls.set_buffer_limit(None);
        let mut client = TlsClient { tcp, tls };
        while client.tls.is_handshaking() {
            client.flush();
            if !client.tls.is_handshaking() {
                break;
            }
            match client.tls.read_tls(&mut client.tcp) {
                Ok(0) => {
                    return Err(rustls::Error::General(
                        "server closed during handshake".into(),
                    ))
                }
                Ok(_) => {}
                Err(e) => return Err(rustls::Error::General(format!("read: {e}"))),
            }
            if let Err(e) = client.tls.process_new_packets() {
                client.flush(); // the alert
                return Err(e);
            }
        }
        client.flush();
        Ok(client)
    }

    /// Writes every queued record in one piece.
    pub fn flush(&mut self) {
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut self.tcp).is_err() {
                return;
            }
        }
    }

    /// Sends `data` as records of random sizes, their bytes written in random pieces.
    pub fn send_fragmented(&mut self, data: &[u8], rng: &mut impl Rng) {
        let mut offset = 0;
        while offset < data.len() {
            let n = rng.random_range(1..=(data.len() - offset).min(20_000));
            self.tls
                .writer()
                .write_all(&data[offset..offset + n])
                .unwrap();
            offset += n;
        }
        let mut wire = Vec::new();
        while self.tls.wants_write() {
            self.tls.write_tls(&mut wire).unwrap();
        }
        let mut start = 0;
        while start < wire.len() {
            let n = rng.random_range(1..=(wire.len() - start).min(9_000));
            self.tcp.write_all(&wire[start..start + n]).expect("send");
            start += n;
        }
    }

    /// Reads exactly `len` plaintext bytes.
    pub fn recv_exact(&mut self, len: usize) -> Vec<u8> {
        let mut got = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match self.tls.reader().read(&mut got[filled..]) {
                Ok(0) => panic!("server closed after {filled} of {len} bytes"),
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let n = self.tls.read_tls(&mut self.tcp).expect("read");
                    assert!(n > 0, "EOF after {filled} of {len} bytes");
                    self.tls.process_new_packets().expect("tls");
                    self.flush();
                }
                Err(e) => panic!("read after {filled} of {len} bytes: {e}"),
            }
        }
        got
    }

    /// Reads until the connection ends: `Ok(true)` on the server's close_notify, `Ok(false)` on
    /// a TCP EOF without it; plaintext is discarded.
    pub fn read_until_closed(&mut self) -> Result<bool, String> {
        let mut buf = [0u8; 4096];
        loop {
            match self.tls.reader().read(&mut buf) {
                Ok(0) => return Ok(true),
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(false),
                Err(e) => return Err(e.to_string()),
            }
            match self.tls.read_tls(&mut self.tcp) {
                Ok(_) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
            self.tls.process_new_packets().map_err(|e| e.to_string())?;
        }
    }
}

/// A free loopback address (bound then released) for a metrics endpoint.
pub fn free_local_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// The Prometheus text of `addr`'s `/metrics`.
pub fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to metrics");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read metrics");
    text
}

/// `gev_closes_total` summed over loops for `reason`.
pub fn closes(metrics: SocketAddr, reason: &str) -> u64 {
    let label = format!("reason=\"{reason}\"");
    scrape(metrics)
        .lines()
        .filter(|l| l.starts_with("gev_closes_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Polls `closes(metrics, reason)` until it reaches `at_least` (panics after the timeout).
pub fn wait_for_closes(metrics: SocketAddr, reason: &str, at_least: u64) -> u64 {
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    loop {
        let n = closes(metrics, reason);
        if n >= at_least {
            return n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gev_closes_total{{reason=\"{reason}\"}} is {n}, expected at least {at_least}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
