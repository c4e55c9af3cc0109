//! TLS at sweep points: which servers run at a TLS point, the flags a server is started with
//! there, and the flags loadgen gets.
//!
//! Where it sits: spec (`tls`, `tls_handshakes`) -> points (`sweep.rs`, `PointParams::tls`) ->
//! **this** -> runner (server command, loadgen arguments). A server speaks TLS when its command
//! template carries the `{tls}` placeholder (built-ins that speak TLS have it, see
//! `builtin.rs`; a `[[command]]` server opts in by writing it). At a TLS point `{tls}` becomes
//! `--tls-cert PEM --tls-key PEM` with the sweep's one throwaway certificate (`tls_cert.rs`),
//! and loadgen gets `--tls --ca PEM`, so the client verifies the server as a real client would.
//! At a plain point `{tls}` is dropped, except for a TLS-only server, which never runs at plain
//! points and starts with `--tls-self-signed` when no certificate is given (the start-up check).

use gev_reports::results::{PointParams, PointTls};

use crate::builtin::{self, TlsSupport};
use crate::runner::ServerSpec;
use crate::tls_cert::CertFiles;

/// The placeholder a command template uses for the TLS flags.
pub const PLACEHOLDER: &str = "{tls}";

/// Whether `server` speaks TLS.
pub fn support(server: &ServerSpec) -> TlsSupport {
    if !server.command.contains(PLACEHOLDER) {
        return TlsSupport::No;
    }
    match builtin::find(&server.name) {
        Some(builtin) => builtin.tls,
        None => TlsSupport::Optional,
    }
}

/// Whether `server` runs at a point with this TLS mode.
pub fn runs_at(server: &ServerSpec, tls: PointTls) -> bool {
    match (support(server), tls.is_off()) {
        (TlsSupport::No, off) => off,
        (TlsSupport::Optional, _) => true,
        (TlsSupport::Only, off) => !off,
    }
}

/// The server flags that use the certificate.
fn cert_flags(cert: &CertFiles) -> String {
    format!(
        "--tls-cert {} --tls-key {}",
        cert.cert.display(),
        cert.key.display()
    )
}

/// `server`'s command template with `{tls}` filled for a point with this TLS mode.
pub fn command_at(server: &ServerSpec, tls: PointTls, cert: Option<&CertFiles>) -> String {
    if !server.command.contains(PLACEHOLDER) {
        return server.command.clone();
    }
    let on = !tls.is_off() || support(server) == TlsSupport::Only;
    let flags = match (on, cert) {
        (false, _) => String::new(),
        (true, Some(cert)) => cert_flags(cert),
        (true, None) => "--tls-self-signed".to_string(),
    };
    server.command.replace(PLACEHOLDER, &flags)
}

/// loadgen's TLS flags for a point (none for a plain point).
pub fn loadgen_args(point: &PointParams, cert: Option<&CertFiles>) -> Vec<String> {
    if point.tls.is_off() {
        return Vec::new();
    }
    let mut args = vec!["--tls".to_string()];
    match cert {
        Some(cert) => {
            args.push("--ca".into());
            args.push(cert.cert.display().to_string());
        }
        None => args.push("--insecure".into()),
    }
    match point.tls {
        PointTls::HandshakesResumed => {
            args.extend(["--handshake-only", "--tls-resume", "on"].map(String::from))
        }
        PointTls::HandshakesFull => {
            args.extend(["--handshake-only", "--tls-resume", "off"].map(String::from))
        }
        PointTls::On | PointTls::Off => {}
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::Framing;
    use std::path::{Path, PathBuf};

    fn server(name: &str, command: &str) -> ServerSpec {
        ServerSpec {
            name: name.into(),
            command: command.into(),
            framing: Framing::Raw,
            reference: false,
            metrics: false,
        }
    }

    #[test]
    fn placeholder_decides_where_a_server_runs() {
        let bin = Path::new("/b");
        let gev = server("gev-echo", &builtin::find("gev-echo").unwrap().command(bin));
        let reference = server(
            "ref-tokio-tls-echo",
            &builtin::find("ref-tokio-tls-echo").unwrap().command(bin),
        );
        let plain = server(
            "ref-tokio-echo",
            &builtin::find("ref-tokio-echo").unwrap().command(bin),
        );
        let custom = server("mine", "/x --port {port} {tls}");
        for (s, off, on) in [
            (&gev, true, true),
            (&reference, false, true),
            (&plain, true, false),
            (&custom, true, true),
        ] {
            assert_eq!(runs_at(s, PointTls::Off), off, "{}", s.name);
            assert_eq!(runs_at(s, PointTls::On), on, "{}", s.name);
            assert_eq!(runs_at(s, PointTls::HandshakesFull), on, "{}", s.name);
        }
    }

    #[test]
    fn commands_and_loadgen_flags() {
        let cert = CertFiles {
            cert: PathBuf::from("/o/tls-cert.pem"),
            key: PathBuf::from("/o/tls-key.pem"),
        };
        let custom = server("mine", "/x --port {port} {tls}");
        assert_eq!(
            command_at(&custom, PointTls::Off, Some(&cert)),
            "/x --port {port} "
        );
        assert_eq!(
            command_at(&custom, PointTls::On, Some(&cert)),
            "/x --port {port} --tls-cert /o/tls-cert.pem --tls-key /o/tls-key.pem"
        );
        let only = server(
            "ref-tokio-tls-echo",
            &builtin::find("ref-tokio-tls-echo")
                .unwrap()
                .command(Path::new("/b")),
        );
        assert!(command_at(&only, PointTls::Off, None).ends_with("--tls-self-signed"));
        let mut point = PointParams {
            loops: 1,
            framing: "raw".into(),
            connections: 1,
            payload_size: 0,
            pipeline: 1,
            rate: None,
            duration_secs: 1.0,
            warmup_secs: 0.0,
            tls: PointTls::Off,
            transport: Default::default(),
        };
        assert!(loadgen_args(&point, Some(&cert)).is_empty());
        point.tls = PointTls::HandshakesFull;
        assert_eq!(
            loadgen_args(&point, Some(&cert)).join(" "),
            "--tls --ca /o/tls-cert.pem --handshake-only --tls-resume off"
        );
        point.tls = PointTls::On;
        assert_eq!(loadgen_args(&point, None).join(" "), "--tls --insecure");
    }
}
