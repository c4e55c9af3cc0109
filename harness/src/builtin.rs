//! The servers a sweep spec may name without a command: gev's example servers and the reference
//! servers of this crate, each with the command line that starts it and the loadgen framing it
//! speaks.
//!
//! Where it sits: sweep spec (`spec.rs`) -> **server catalogue** -> runner. Every built-in is a
//! workspace binary found next to the harness binary (`target/<profile>/`), so a built-in's
//! command is that directory plus the binary name plus its flags.
//!
//! Transports (issue 15): a built-in runs at TCP points with [`BuiltIn::command`]; where it has
//! a variant for a Unix socket ([`BuiltIn::unix`]: gev's examples themselves with
//! `--listen unix:PATH`, the tokio reference as `ref-tokio-unix-echo`) or UDP
//! ([`BuiltIn::udp`]: `gev-udp-echo`, `ref-tokio-udp-echo`) it runs at those points too, under
//! the same name, so its figures line up across transports.

use std::path::Path;

use crate::framing::Framing;

/// A server the spec can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltIn {
    /// Name in the spec and in results; also the binary's file name.
    pub name: &'static str,
    /// The flag that sets the number of event loops (or runtime worker threads).
    pub loops_flag: &'static str,
    /// What the server speaks.
    pub framing: Framing,
    /// Whether it is a reference other servers are compared against.
    pub reference: bool,
    /// Whether it accepts `--metrics ADDR` (Prometheus text at `/metrics`).
    pub has_metrics: bool,
    /// Whether it speaks TLS with `--tls-cert PEM --tls-key PEM` (issue 14).
    pub tls: TlsSupport,
    /// The binary that serves it over a Unix stream socket (`--listen unix:PATH`), if any.
    pub unix: Option<Variant>,
    /// Its datagram variant (`--host --port`, one reply datagram per datagram), if any.
    pub udp: Option<Variant>,
}

/// The binary a built-in runs as at another transport's points, and its loops flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// The binary's file name (next to the harness binary).
    pub binary: &'static str,
    /// The flag that sets its event loops (worker threads).
    pub loops_flag: &'static str,
}

/// Whether a server speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsSupport {
    /// Plain TCP only.
    No,
    /// Plain by default, TLS with `--tls-cert/--tls-key`: runs at plain and at TLS points.
    Optional,
    /// TLS only (`--tls-cert/--tls-key`, or `--tls-self-signed` for the start-up check).
    Only,
}

/// Every built-in server, gev's first, then the references.
pub const BUILT_INS: [BuiltIn; 8] = [
    BuiltIn {
        udp: Some(Variant {
            binary: "gev-udp-echo",
            loops_flag: "--loops",
        }),
        ..gev("gev-echo", Framing::Raw)
    },
    gev("gev-protocol", Framing::Length),
    gev("gev-http", Framing::Http),
    gev("gev-websocket", Framing::WebSocket),
    BuiltIn {
        unix: Some(Variant {
            binary: "ref-tokio-unix-echo",
            loops_flag: "--workers",
        }),
        udp: Some(Variant {
            binary: "ref-tokio-udp-echo",
            loops_flag: "--workers",
        }),
        ..reference("ref-tokio-echo", "--workers", Framing::Raw)
    },
    reference("ref-mio-echo", "--threads", Framing::Raw),
    reference("ref-tokio-ws-echo", "--workers", Framing::WebSocket),
    BuiltIn {
        tls: TlsSupport::Only,
        ..reference("ref-tokio-tls-echo", "--workers", Framing::Raw)
    },
];

const fn gev(name: &'static str, framing: Framing) -> BuiltIn {
    BuiltIn {
        name,
        loops_flag: "--loops",
        framing,
        reference: false,
        has_metrics: true,
        // Every gev example binary takes --tls-cert/--tls-key (issue 14, server side).
        tls: TlsSupport::Optional,
        // ... and --listen unix:PATH (issue 15).
        unix: Some(Variant {
            binary: name,
            loops_flag: "--loops",
        }),
        udp: None,
    }
}

const fn reference(name: &'static str, loops_flag: &'static str, framing: Framing) -> BuiltIn {
    BuiltIn {
        name,
        loops_flag,
        framing,
        reference: true,
        has_metrics: false,
        tls: TlsSupport::No,
        unix: None,
        udp: None,
    }
}

/// The built-in called `name`, if any.
pub fn find(name: &str) -> Option<&'static BuiltIn> {
    BUILT_INS.iter().find(|builtin| builtin.name == name)
}

/// All built-in names, for error messages.
pub fn names() -> String {
    BUILT_INS
        .iter()
        .map(|builtin| builtin.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl BuiltIn {
    /// The command template that starts this server from `bin_dir`, listening on loopback only.
    /// A server that speaks TLS carries the `{tls}` placeholder, which the runner fills with
    /// the certificate flags at TLS points (see `runner::tls_flags`).
    pub fn command(&self, bin_dir: &Path) -> String {
        let tls = if self.tls == TlsSupport::No {
            ""
        } else {
            " {tls}"
        };
        format!(
            "{} --host 127.0.0.1 --port {{port}} {} {{loops}}{tls}",
            bin_dir.join(self.name).display(),
            self.loops_flag
        )
    }
}

impl Variant {
    /// The command template of this variant over a Unix socket: `{path}` is the socket path the
    /// runner makes for each run.
    pub fn unix_command(&self, bin_dir: &Path) -> String {
        format!(
            "{} --listen unix:{{path}} {} {{loops}}",
            bin_dir.join(self.binary).display(),
            self.loops_flag
        )
    }

    /// The command template of this datagram variant, on loopback only.
    pub fn udp_command(&self, bin_dir: &Path) -> String {
        format!(
            "{} --host 127.0.0.1 --port {{port}} {} {{loops}}",
            bin_dir.join(self.binary).display(),
            self.loops_flag
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_carry_both_placeholders() {
        for builtin in BUILT_INS {
            let command = builtin.command(Path::new("/bin/dir"));
            assert!(command.starts_with(&format!("/bin/dir/{}", builtin.name)));
            assert!(command.contains("{port}") && command.contains("{loops}"));
        }
    }

    #[test]
    fn names_are_unique_and_found() {
        for builtin in BUILT_INS {
            assert_eq!(find(builtin.name), Some(&builtin));
        }
        assert_eq!(find("gnet"), None);
        assert_eq!(find("ref-tokio-tls-echo").unwrap().tls, TlsSupport::Only);
        assert!(find("ref-tokio-tls-echo").unwrap().reference);
        assert!(find("gev-echo")
            .unwrap()
            .command(Path::new("/b"))
            .ends_with("{tls}"));
        assert!(names().contains("ref-mio-echo"));
    }

    #[test]
    fn transport_variants() {
        let bin = Path::new("/b");
        let gev = find("gev-echo").unwrap();
        assert_eq!(
            gev.unix.unwrap().unix_command(bin),
            "/b/gev-echo --listen unix:{path} --loops {loops}"
        );
        assert_eq!(
            gev.udp.unwrap().udp_command(bin),
            "/b/gev-udp-echo --host 127.0.0.1 --port {port} --loops {loops}"
        );
        let tokio = find("ref-tokio-echo").unwrap();
        assert_eq!(tokio.unix.unwrap().binary, "ref-tokio-unix-echo");
        assert_eq!(tokio.udp.unwrap().binary, "ref-tokio-udp-echo");
        assert!(find("gev-http").unwrap().udp.is_none());
        assert!(find("ref-mio-echo").unwrap().unix.is_none());
    }
}
