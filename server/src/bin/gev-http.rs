//! `gev-http`: the HTTP/1.1 keep-alive server of [`gev::http`] (GET/POST answer
//! `200 Hello, World!`, see [`gev::http::HelloWorld`]), the reference server for comparing
//! `loadgen --framing http` with `wrk`. With `--tls-cert`/`--tls-key` it serves https (ALPN
//! `http/1.1`) with the same module.
//!
//! Prints `listening on ADDR` once bound and exits 0 within a second of SIGINT/SIGTERM.

use anyhow::Context;
use clap::Parser;
use gev::example::{init_tracing, serve_until_signal, ExampleArgs};
use gev::http::{HelloWorld, HttpProtocol};
use gev::Server;

#[derive(Debug, Parser)]
#[command(
    name = "gev-http",
    about = "HTTP/1.1 keep-alive server on the gev reactor (https with --tls-cert/--tls-key)"
)]
struct Args {
    #[command(flatten)]
    common: ExampleArgs,
    /// Largest request head (request line + headers) in bytes; larger gets 431 and a close.
    #[arg(long, default_value_t = 16 * 1024)]
    max_head: usize,
    /// Largest request body in bytes; larger gets 413 and a close.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_body: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing();
    let protocol = HttpProtocol {
        max_head: args.max_head,
        max_body: args.max_body,
    };
    let options = args.common.options(&[b"http/1.1"])?;
    let server = Server::new(options, protocol, HelloWorld)
        .with_context(|| format!("starting gev-http on {}", args.common.addr()))?;
    serve_until_signal(server)
}
