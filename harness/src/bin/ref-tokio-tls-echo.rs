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
//! the server sends close_notify. The flags, runtime, signals and accept loop are
//! `gev_harness::refserver`'s.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use gev_harness::refserver::{self, TcpArgs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

/// A tokio-rustls echo server used as a reference in TLS benchmark sweeps.
#[derive(Debug, Parser)]
#[command(name = "ref-tokio-tls-echo", version)]
struct Args {
    #[command(flatten)]
    tcp: TcpArgs,
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
    let acceptor = TlsAcceptor::from(Arc::new(server_config(&args)?));
    let handshake_timeout = *args.handshake_timeout;
    refserver::run(args.tcp.runtime.workers, async {
        let listener = args.tcp.bind().await?;
        refserver::serve(listener, "ref-tokio-tls-echo", move |stream| {
            echo(stream, acceptor.clone(), handshake_timeout)
        })
        .await
    })
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

/// Handshakes, then writes back every byte read until the peer closes or an error occurs;
/// answers the peer's EOF with close_notify.
async fn echo(stream: TcpStream, acceptor: TlsAcceptor, handshake_timeout: Duration) {
    // A failed or stalled handshake costs only this connection.
    if let Ok(Ok(stream)) = tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
        refserver::echo(stream).await;
    }
}
