//! The wire format a server speaks, as loadgen names it (`--framing`), and the target address
//! form loadgen expects for it.
//!
//! Where it sits: spec and server catalogue pick a framing per server -> the runner builds the
//! loadgen target (`host:port`, `ws://host:port/`, `http://host:port/`) from it.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A loadgen framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// Every payload echoed byte for byte.
    Raw,
    /// 4-byte big-endian length + payload.
    Length,
    /// WebSocket binary messages.
    #[serde(rename = "websocket")]
    WebSocket,
    /// HTTP/1.1 keep-alive GET requests.
    Http,
}

impl Framing {
    /// loadgen's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Framing::Raw => "raw",
            Framing::Length => "length",
            Framing::WebSocket => "websocket",
            Framing::Http => "http",
        }
    }

    /// The loadgen target for a server listening on `addr`.
    pub fn target(self, addr: SocketAddr) -> String {
        match self {
            Framing::Raw | Framing::Length => addr.to_string(),
            Framing::WebSocket => format!("ws://{addr}/"),
            Framing::Http => format!("http://{addr}/"),
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A framing name loadgen does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown framing {0:?} (expected raw, length, websocket or http)")]
pub struct UnknownFraming(pub String);

impl FromStr for Framing {
    type Err = UnknownFraming;

    fn from_str(text: &str) -> Result<Framing, UnknownFraming> {
        match text {
            "raw" => Ok(Framing::Raw),
            "length" => Ok(Framing::Length),
            "websocket" => Ok(Framing::WebSocket),
            "http" => Ok(Framing::Http),
            other => Err(UnknownFraming(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for framing in [
            Framing::Raw,
            Framing::Length,
            Framing::WebSocket,
            Framing::Http,
        ] {
            assert_eq!(framing.as_str().parse::<Framing>(), Ok(framing));
        }
        assert!("tcp".parse::<Framing>().is_err());
    }

    #[test]
    fn targets_match_loadgen_forms() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(Framing::Raw.target(addr), "127.0.0.1:9");
        assert_eq!(Framing::WebSocket.target(addr), "ws://127.0.0.1:9/");
        assert_eq!(Framing::Http.target(addr), "http://127.0.0.1:9/");
    }
}
