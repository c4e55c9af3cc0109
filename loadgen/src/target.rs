//! The server under test: `host:port`, `ws://host:port/path` or `http://host:port/path`, and
//! their TLS forms `tls://host:port`, `wss://host:port/path` and `https://host:port/path`;
//! `unix:/path` (a Unix stream socket, any stream framing) and `udp://host:port` (datagrams,
//! see `udp.rs`).
//!
//! Parsing only splits the text; [`Target::resolve`] turns the host into a socket address once,
//! before any worker starts, so workers connect to a fixed address.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::framing::FramingKind;

/// How the target was written, which implies a default framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Bare `host:port`: raw TCP (framing raw unless `--framing` says otherwise).
    Tcp,
    /// `ws://`: WebSocket.
    Ws,
    /// `http://`: HTTP/1.1.
    Http,
}

/// What carries the bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Transport {
    /// TCP (optionally under TLS).
    #[default]
    Tcp,
    /// A Unix stream socket at this path (`unix:/path`).
    Unix(std::path::PathBuf),
    /// UDP datagrams (`udp://host:port`).
    Udp,
}

/// A parsed target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// TCP, Unix stream socket or UDP.
    pub transport: Transport,
    pub scheme: Scheme,
    /// Host as written (brackets removed from IPv6 literals).
    pub host: String,
    pub port: u16,
    /// Request path, `/` when none was given.
    pub path: String,
    /// Spoken over TLS (`tls://`, `wss://`, `https://`, or `--tls`).
    pub tls: bool,
}

/// Why a target string is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("TARGET {0:?} uses an unsupported scheme; write host:port, ws://host:port/path, http://host:port/path, their TLS forms tls://, wss://, https://, unix:/path or udp://host:port")]
    Scheme(String),
    #[error("TARGET {0:?} has no port; write it as host:port, e.g. 127.0.0.1:1833")]
    NoPort(String),
    #[error("TARGET {0:?} has an invalid port; use a number from 1 to 65535")]
    BadPort(String),
    #[error("TARGET {0:?} has no host; write it as host:port, e.g. 127.0.0.1:1833")]
    NoHost(String),
    #[error("cannot resolve TARGET host {host:?}: {reason}")]
    Resolve { host: String, reason: String },
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, TargetError> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(TargetError::NoHost(text.to_string()));
            }
            return Ok(Target {
                transport: Transport::Unix(path.into()),
                scheme: Scheme::Tcp,
                host: "localhost".into(),
                port: 0,
                path: "/".into(),
                tls: false,
            });
        }
        if let Some(rest) = text.strip_prefix("udp://") {
            let mut target = Target::parse(rest)?;
            if target.scheme != Scheme::Tcp || target.tls || target.transport != Transport::Tcp {
                return Err(TargetError::Scheme(text.to_string()));
            }
            target.transport = Transport::Udp;
            return Ok(target);
        }
        let schemes = [
            ("ws://", Scheme::Ws, false),
            ("http://", Scheme::Http, false),
            ("tls://", Scheme::Tcp, true),
            ("wss://", Scheme::Ws, true),
            ("https://", Scheme::Http, true),
        ];
        let known = schemes
            .iter()
            .find_map(|(prefix, scheme, tls)| Some((*scheme, text.strip_prefix(prefix)?, *tls)));
        let (scheme, rest, tls) = if let Some(known) = known {
            known
        } else if text.contains("://") {
            return Err(TargetError::Scheme(text.to_string()));
        } else {
            (Scheme::Tcp, text, false)
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let default_port = match (scheme, tls) {
            (Scheme::Tcp, _) => None,
            (Scheme::Ws | Scheme::Http, false) => Some(80),
            (Scheme::Ws | Scheme::Http, true) => Some(443),
        };
        let (host, port_text) = if let Some(inner) = authority.strip_prefix('[') {
            let Some(close) = inner.find(']') else {
                return Err(TargetError::NoHost(text.to_string()));
            };
            let after = &inner[close + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(TargetError::BadPort(text.to_string())),
            };
            (&inner[..close], port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(TargetError::NoHost(text.to_string()));
        }
        let port = match (port_text, default_port) {
            (Some(p), _) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| TargetError::BadPort(text.to_string()))?,
            (None, Some(d)) => d,
            (None, None) => return Err(TargetError::NoPort(text.to_string())),
        };
        Ok(Target {
            transport: Transport::Tcp,
            scheme,
            host: host.to_string(),
            port,
            path,
            tls,
        })
    }

    /// The host is a name (not an IP literal), so it is the default SNI.
    pub fn host_is_name(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_err()
    }

    /// The framing implied by the scheme.
    pub fn default_framing(&self) -> FramingKind {
        match self.scheme {
            Scheme::Tcp => FramingKind::Raw,
            Scheme::Ws => FramingKind::Websocket,
            Scheme::Http => FramingKind::Http,
        }
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Every address the host resolves to, in resolver order (at least one).
    /// A Unix target has none: it yields the placeholder `0.0.0.0:0` (workers connect to the path).
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, TargetError> {
        if let Transport::Unix(_) = self.transport {
            return Ok(vec![SocketAddr::from(([0, 0, 0, 0], 0))]);
        }
        let resolve_error = |reason: String| TargetError::Resolve {
            host: self.host.clone(),
            reason,
        };
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| resolve_error(e.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(resolve_error("no addresses".into()));
        }
        Ok(addrs)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.transport {
            Transport::Unix(path) => return write!(f, "unix:{}", path.display()),
            Transport::Udp => return write!(f, "udp://{}", self.host_header()),
            Transport::Tcp => {}
        }
        match (self.scheme, self.tls) {
            (Scheme::Tcp, false) => write!(f, "{}", self.host_header()),
            (Scheme::Tcp, true) => write!(f, "tls://{}", self.host_header()),
            (Scheme::Ws, false) => write!(f, "ws://{}{}", self.host_header(), self.path),
            (Scheme::Ws, true) => write!(f, "wss://{}{}", self.host_header(), self.path),
            (Scheme::Http, false) => write!(f, "http://{}{}", self.host_header(), self.path),
            (Scheme::Http, true) => write!(f, "https://{}{}", self.host_header(), self.path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        let tcp = Target::parse("127.0.0.1:1833").unwrap();
        assert_eq!(
            (tcp.scheme, tcp.port, tcp.path.as_str()),
            (Scheme::Tcp, 1833, "/")
        );
        let ws = Target::parse("ws://localhost:9001/chat?x=1").unwrap();
        assert_eq!(ws.scheme, Scheme::Ws);
        assert_eq!(ws.path, "/chat?x=1");
        assert_eq!(ws.default_framing(), FramingKind::Websocket);
        let http = Target::parse("http://example.invalid").unwrap();
        assert_eq!((http.port, http.path.as_str()), (80, "/"));
        let v6 = Target::parse("[::1]:8080").unwrap();
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.host_header(), "[::1]:8080");
        assert_eq!(v6.resolve().unwrap()[0].port(), 8080);
    }

    #[test]
    fn parses_the_tls_forms() {
        let tls = Target::parse("tls://127.0.0.1:8443").unwrap();
        assert_eq!((tls.scheme, tls.tls, tls.port), (Scheme::Tcp, true, 8443));
        assert!(!tls.host_is_name());
        assert_eq!(tls.to_string(), "tls://127.0.0.1:8443");
        let https = Target::parse("https://localhost/x").unwrap();
        assert_eq!(
            (https.scheme, https.tls, https.port),
            (Scheme::Http, true, 443)
        );
        assert!(https.host_is_name());
        let wss = Target::parse("wss://[::1]:9/chat").unwrap();
        assert_eq!(
            (wss.scheme, wss.tls, wss.path.as_str()),
            (Scheme::Ws, true, "/chat")
        );
        assert_eq!(wss.to_string(), "wss://[::1]:9/chat");
        assert!(!Target::parse("ws://h:1/").unwrap().tls);
        assert!(matches!(
            Target::parse("tls://h"),
            Err(TargetError::NoPort(_))
        ));
    }

    #[test]
    fn parses_unix_and_udp_targets() {
        let unix = Target::parse("unix:/tmp/gev.sock").unwrap();
        assert_eq!(unix.transport, Transport::Unix("/tmp/gev.sock".into()));
        assert_eq!(unix.to_string(), "unix:/tmp/gev.sock");
        assert_eq!(unix.default_framing(), FramingKind::Raw);
        assert_eq!(unix.resolve().unwrap().len(), 1);
        let udp = Target::parse("udp://127.0.0.1:9000").unwrap();
        assert_eq!((udp.transport.clone(), udp.port), (Transport::Udp, 9000));
        assert_eq!(udp.to_string(), "udp://127.0.0.1:9000");
        assert!(Target::parse("unix:").is_err());
        assert!(Target::parse("udp://ws://h:1").is_err());
        assert!(Target::parse("udp://h").is_err());
    }

    #[test]
    fn rejects_bad_targets_with_a_fix() {
        assert!(matches!(
            Target::parse("127.0.0.1"),
            Err(TargetError::NoPort(_))
        ));
        assert!(matches!(
            Target::parse("host:0"),
            Err(TargetError::BadPort(_))
        ));
        assert!(matches!(
            Target::parse("host:99999"),
            Err(TargetError::BadPort(_))
        ));
        assert!(matches!(Target::parse(":80"), Err(TargetError::NoHost(_))));
        assert!(matches!(
            Target::parse("ftp://h:1"),
            Err(TargetError::Scheme(_))
        ));
    }
}
