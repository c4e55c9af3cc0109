//! The servers a sweep spec may name without a command: gev's example servers and the reference
//! servers of this crate, each with the command line that starts it and the loadgen framing it
//! speaks.
//!
//! Where it sits: sweep spec (`spec.rs`) -> **server catalogue** -> runner. Every built-in is a
//! workspace binary found next to the harness binary (`target/<profile>/`), so a built-in's
//! command is that directory plus the binary name plus its flags.

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
    gev("gev-echo", Framing::Raw),
    gev("gev-protocol", Framing::Length),
    gev("gev-http", Framing::Http),
    gev("gev-websocket", Framing::WebSocket),
    reference("ref-tokio-echo", "--workers", Framing::Raw),
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
}
