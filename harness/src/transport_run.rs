//! Transports at sweep points (issue 15): which command a server runs with at a TCP, Unix-socket
//! or UDP point, and the loadgen target that reaches it there.
//!
//! Where it sits: spec (`transports`, built-ins' variants, `[[command]]`'s `unix_command` and
//! `udp_command`) -> points (`sweep.rs`, `PointParams::transport`) -> **this** -> runner
//! (server command, loadgen target). A server keeps its name at every transport, so its figures
//! line up across them (the tokio reference is `ref-tokio-echo` at TCP points and runs as
//! `ref-tokio-unix-echo` and `ref-tokio-udp-echo` at the others; `results.json` records each
//! server's command per transport). At a Unix-socket point the command's `{path}` placeholder is
//! filled by the runner with a socket path in a fresh temporary directory per server process,
//! so servers started side by side never share a path; the server prints `listening on
//! unix:PATH` and loadgen gets `unix:PATH`. At a UDP point the server is its datagram variant,
//! prints `listening on ADDR`, and loadgen gets `udp://ADDR`.

use std::collections::BTreeMap;

use gev_reports::results::PointTransport;

use crate::framing::Framing;
use crate::runner::{Listening, ServerSpec};

/// The placeholder a Unix-socket command template uses for the socket path.
pub const PATH_PLACEHOLDER: &str = "{path}";

/// A server's command templates at the transports other than TCP (TCP is
/// [`ServerSpec::command`]); `None` where it does not run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportCommands {
    /// With `{path}` and `{loops}` placeholders.
    pub unix: Option<String>,
    /// With `{port}` and `{loops}` placeholders.
    pub udp: Option<String>,
}

impl TransportCommands {
    /// The template for `transport` (`None` for TCP, which is the server's own command).
    pub fn get(&self, transport: PointTransport) -> Option<&String> {
        match transport {
            PointTransport::Tcp => None,
            PointTransport::Unix => self.unix.as_ref(),
            PointTransport::Udp => self.udp.as_ref(),
        }
    }
}

/// Every server's other-transport commands, by server name.
pub type Variants = BTreeMap<String, TransportCommands>;

/// `server` as it runs at a point of `transport`, or `None` if it has no variant for it. A
/// server scraped for metrics (the spec's `metrics`) is scraped at every transport, so its
/// variants take `--metrics ADDR` too (`gev-udp-echo` serves its `gev_udp_*` counters there,
/// which give the UDP points' datagrams per syscall).
pub fn server_at(
    server: &ServerSpec,
    transport: PointTransport,
    variants: &Variants,
) -> Option<ServerSpec> {
    if transport.is_tcp() {
        return Some(server.clone());
    }
    let command = variants.get(&server.name)?.get(transport)?;
    Some(ServerSpec {
        command: command.clone(),
        ..server.clone()
    })
}

/// Whether `server` runs at points of `transport`.
pub fn runs_at(server: &ServerSpec, transport: PointTransport, variants: &Variants) -> bool {
    transport.is_tcp()
        || variants
            .get(&server.name)
            .is_some_and(|commands| commands.get(transport).is_some())
}

/// loadgen's target for a server of `framing` listening where `listening` says, at a point of
/// `transport`; an error when the server listens on the wrong kind of socket.
pub fn target(
    framing: Framing,
    transport: PointTransport,
    listening: &Listening,
) -> Result<String, String> {
    match (transport, listening) {
        (PointTransport::Tcp, Listening::Ip(addr)) => Ok(framing.target(*addr)),
        (PointTransport::Udp, Listening::Ip(addr)) => Ok(format!("udp://{addr}")),
        (PointTransport::Unix, Listening::Unix(path)) => Ok(format!("unix:{}", path.display())),
        (transport, listening) => Err(format!(
            "a {transport} point needs {}, but the server printed `listening on {listening}`",
            match transport {
                PointTransport::Unix => "a Unix socket (`listening on unix:PATH`)",
                _ => "an IP address (`listening on IP:PORT`)",
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn server(name: &str) -> ServerSpec {
        ServerSpec {
            name: name.into(),
            command: "/x --port {port} --loops {loops}".into(),
            framing: Framing::Raw,
            reference: false,
            metrics: true,
        }
    }

    #[test]
    fn variants_decide_where_a_server_runs_and_how() {
        let mut variants = Variants::new();
        variants.insert(
            "both".into(),
            TransportCommands {
                unix: Some("/x --listen unix:{path}".into()),
                udp: Some("/x-udp --port {port}".into()),
            },
        );
        let both = server("both");
        let tcp_only = server("tcp-only");
        assert_eq!(
            server_at(&both, PointTransport::Tcp, &variants),
            Some(both.clone())
        );
        let unix = server_at(&both, PointTransport::Unix, &variants).unwrap();
        assert_eq!(
            (unix.command.as_str(), unix.metrics, unix.name.as_str()),
            ("/x --listen unix:{path}", true, "both")
        );
        let udp = server_at(&both, PointTransport::Udp, &variants).unwrap();
        assert!(udp.metrics && udp.command.starts_with("/x-udp"));
        assert!(server_at(&tcp_only, PointTransport::Unix, &variants).is_none());
        assert!(runs_at(&tcp_only, PointTransport::Tcp, &variants));
        assert!(!runs_at(&tcp_only, PointTransport::Udp, &variants));
        assert!(runs_at(&both, PointTransport::Udp, &variants));
    }

    #[test]
    fn targets_follow_the_transport_and_refuse_the_wrong_socket() {
        let ip = Listening::Ip("127.0.0.1:9".parse().unwrap());
        let unix = Listening::Unix(PathBuf::from("/tmp/d/s.sock"));
        assert_eq!(
            target(Framing::WebSocket, PointTransport::Tcp, &ip).unwrap(),
            "ws://127.0.0.1:9/"
        );
        assert_eq!(
            target(Framing::Raw, PointTransport::Udp, &ip).unwrap(),
            "udp://127.0.0.1:9"
        );
        assert_eq!(
            target(Framing::Http, PointTransport::Unix, &unix).unwrap(),
            "unix:/tmp/d/s.sock"
        );
        let wrong = target(Framing::Raw, PointTransport::Unix, &ip).unwrap_err();
        assert!(
            wrong.contains("listening on 127.0.0.1:9") && wrong.contains("unix:PATH"),
            "{wrong}"
        );
        assert!(target(Framing::Raw, PointTransport::Tcp, &unix).is_err());
    }
}
