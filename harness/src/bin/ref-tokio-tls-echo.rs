//! Reference server: a tokio echo server over TLS with tokio-rustls (the `ring` provider, as gev
//! and loadgen use).
//!
//! It is the "what most Rust users would write" baseline for gev over TLS, run in the same sweep
//! with the same certificate. Like `ref-tokio-echo` it takes `--workers N` (alias `--loops`),
//! prints `listening on <ip:port>` once bound and exits 0 on SIGINT or SIGTERM. The certificate
//! comes from `--tls-cert PEM --tls-key PEM`, or `--tls-self-signed` makes one for `localhost`,
//! `127.0.0.1` and `::1` (clients then need `--insecure`). Session resumption is on as in gev's
//! default: stateless tickets (TLS 1.2 and 1.3) from rustls's ring ticketer, 2 tickets per
//! TLS 1.3 handshake. A handshake has `--handshake-timeout` to finish; a peer that stops half
//! way, sends plaintext or fails verification loses only its own connection. On the peer's EOF
//! the server sends close_notify.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio_rustls::TlsAcceptor;

/// Size of each connection's read buffer: the same 64 KiB gev's loops read into.
const READ_BUFFER_SIZE: usize = 64 * 1024;

/// A tokio-rustls echo server used as a reference in TLS benchmark sweeps.
#[derive(Debug, Parser)]
#[command(name = "ref-tokio-tls-echo", version)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    /// Port to bind (0 picks a free one; read it from the `listening on` line).
    #[arg(long, default_value_t = 1833)]
    port: u16,
    /// Runtime worker threads; 0 or less means one per core.
    #[arg(long, alias = "loops", default_value_t = -1, allow_negative_numbers = true)]
    workers: i64,
    /// Certificate chain, PEM (leaf first).
    #[arg(
        long,
        value_name = "PEM",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    tls_cert: Option<PathBuf>,
    /// Private key of the certificate, PEM (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Generate a self-signed certificate for localhost, 127.0.0.1 and ::1.
    #[arg(long)]
    tls_self_signed: bool,
    /// Time a TLS handshake may take before the connection is dropped, e.g. 10s.
    #[arg(long, default_value = "10s")]
    handshake_timeout: humantime::Duration,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = server_config(&args)?;
    let workers = match usize::try_from(args.workers) {
        Ok(n) if n > 0 => n,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let timeout = *args.handshake_timeout;
    let result = runtime.block_on(serve(&args.host, args.port, acceptor, timeout));
    // Connections still open at shutdown are dropped, not drained: the harness stops the server
    // only after the load generator has finished.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

/// The rustls server configuration: certificate, ring provider, ticket-based resumption.
fn server_config(args: &Args) -> anyhow::Result<rustls::ServerConfig> {
    let (certs, key) = match (&args.tls_cert, &args.tls_key, args.tls_self_signed) {
        (Some(cert), Some(key), false) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .with_context(|| format!("reading --tls-cert {}", cert.display()))?;
            if certs.is_empty() {
                bail!("--tls-cert {} holds no certificate", cert.display());
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("reading --tls-key {}", key.display()))?;
            (certs, key)
        }
        (None, None, true) => {
            let pair = gev_harness::tls_cert::self_signed()?;
            let certs = vec![CertificateDer::from_pem_slice(pair.cert_pem.as_bytes())
                .context("reading the generated certificate")?];
            let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes())
                .context("reading the generated key")?;
            (certs, key)
        }
        _ => bail!("give --tls-cert PEM --tls-key PEM, or --tls-self-signed"),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key do not form a usable pair")?;
    config.ticketer = rustls::crypto::ring::Ticketer::new().context("creating the ticketer")?;
    Ok(config)
}

async fn serve(
    host: &str,
    port: u16,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind((host, port))
        .await
        .with_context(|| format!("binding {host}:{port}"))?;
    let local: SocketAddr = listener.local_addr().context("reading the bound address")?;
    // Handlers go in before the announcement: a SIGINT sent as soon as the line is read must
    // stop the server cleanly, not kill it.
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    announce(local)?;
    loop {
        tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    tokio::spawn(echo(stream, acceptor.clone(), handshake_timeout));
                }
                // Running out of descriptors or a connection reset before accept must not stop
                // the server for everyone else.
                Err(error) => eprintln!("ref-tokio-tls-echo: accept failed: {error}"),
            },
        }
    }
}

/// Prints the one line the harness and tests wait for.
fn announce(local: SocketAddr) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {local}").context("writing to stdout")?;
    stdout.flush().context("flushing stdout")
}

/// Handshakes, then writes back every byte read until the peer closes or an error occurs;
/// answers the peer's EOF with close_notify.
async fn echo(stream: TcpStream, acceptor: TlsAcceptor, handshake_timeout: Duration) {
    let _ = stream.set_nodelay(true);
    let mut stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        // A failed or stalled handshake costs only this connection.
        Ok(Err(_)) | Err(_) => return,
    };
    let mut buffer = vec![0u8; READ_BUFFER_SIZE];
    loop {
        let read = match stream.read(&mut buffer).await {
            Ok(0) => {
                let _ = stream.shutdown().await;
                return;
            }
            Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buffer[..read]).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}
