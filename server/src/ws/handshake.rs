//! Server handshake: the HTTP/1.1 upgrade request -> `101 Switching Protocols` (RFC 6455 §4.2).
//!
//! The first step of every connection. [`parse_request`] reads the request from the front of the
//! connection's input with `httparse` (a partial request is `Ok(None)`; a request larger than
//! `max_handshake_size` is refused with 431 before it is complete), then checks the upgrade rules:
//! GET, HTTP/1.1, `Host`, `Upgrade: websocket`, `Connection: upgrade`, a 16-byte base64
//! `Sec-WebSocket-Key`, and `Sec-WebSocket-Version: 13` (426 with the supported version
//! otherwise). The application's [`HandshakeHook`] then accepts or rejects by path, headers and
//! subprotocol; the response is written by [`write_accept`] or [`write_reject`].

use base64::Engine;
use sha1::{Digest, Sha1};

/// The GUID of RFC 6455 §1.3, appended to the client key before hashing.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A validated upgrade request, as the hook and the handler's `on_open` see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRequest {
    /// The request target, e.g. `/chat?room=1`.
    pub path: String,
    /// Every header in arrival order; names as sent, values lossily decoded as UTF-8.
    pub headers: Vec<(String, String)>,
    /// The `Sec-WebSocket-Protocol` offers, in the client's order of preference.
    pub subprotocols: Vec<String>,
    /// The `Sec-WebSocket-Key` value (already checked to be 16 base64-encoded bytes).
    pub key: String,
}

impl HandshakeRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the headers named `name`, split on commas and trimmed (for list headers).
    pub fn header_tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }
}

/// What the application's hook decides about an upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeDecision {
    /// Upgrade. `subprotocol` must be one the client offered (else it is not sent);
    /// `headers` are added to the 101 response.
    Accept {
        subprotocol: Option<String>,
        headers: Vec<(String, String)>,
    },
    /// Refuse with this HTTP status (e.g. 403, 404) and a one-line reason sent as the body.
    Reject { status: u16, reason: String },
}

impl HandshakeDecision {
    /// Accept with no subprotocol and no extra headers.
    pub fn accept() -> Self {
        HandshakeDecision::Accept {
            subprotocol: None,
            headers: Vec::new(),
        }
    }
}

/// Accepts or rejects upgrade requests; runs on the connection's loop thread, so keep it quick.
pub trait HandshakeHook: Send + Sync + 'static {
    fn decide(&self, request: &HandshakeRequest) -> HandshakeDecision;
}

impl<F> HandshakeHook for F
where
    F: Fn(&HandshakeRequest) -> HandshakeDecision + Send + Sync + 'static,
{
    fn decide(&self, request: &HandshakeRequest) -> HandshakeDecision {
        self(request)
    }
}

/// The default hook: accept every valid upgrade, no subprotocol.
#[derive(Debug, Default, Clone, Copy)]
pub struct AcceptAll;

impl HandshakeHook for AcceptAll {
    fn decide(&self, _request: &HandshakeRequest) -> HandshakeDecision {
        HandshakeDecision::accept()
    }
}

/// Why an upgrade request is refused before the hook sees it: the HTTP status and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

fn refuse(status: u16, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

/// Parses and validates the upgrade request at the front of `input`. `Ok(None)`: incomplete.
/// `Ok(Some((request, consumed)))`: `consumed` bytes form the request (frames may follow).
pub fn parse_request(
    input: &[u8],
    max_size: usize,
    max_headers: usize,
) -> Result<Option<(HandshakeRequest, usize)>, Refusal> {
    let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
    let mut request = httparse::Request::new(&mut headers);
    let consumed = match request.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if input.len() > max_size {
                return Err(refuse(
                    431,
                    format!("upgrade request larger than {max_size} bytes"),
                ));
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refuse(431, format!("more than {max_headers} headers")));
        }
        Err(e) => return Err(refuse(400, format!("malformed HTTP request: {e}"))),
    };
    if consumed > max_size {
        return Err(refuse(
            431,
            format!("upgrade request larger than {max_size} bytes"),
        ));
    }
    if request.method != Some("GET") {
        return Err(refuse(405, "WebSocket upgrade requires GET"));
    }
    if request.version != Some(1) {
        return Err(refuse(400, "WebSocket upgrade requires HTTP/1.1"));
    }
    let request = HandshakeRequest {
        path: request.path.unwrap_or("/").to_owned(),
        headers: request
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        subprotocols: Vec::new(),
        key: String::new(),
    };
    let request = validate(request)?;
    Ok(Some((request, consumed)))
}

fn validate(mut request: HandshakeRequest) -> Result<HandshakeRequest, Refusal> {
    if request.header("host").is_none() {
        return Err(refuse(400, "missing Host header"));
    }
    if !request
        .header_tokens("upgrade")
        .any(|t| t.eq_ignore_ascii_case("websocket"))
    {
        return Err(refuse(400, "missing `Upgrade: websocket`"));
    }
    if !request
        .header_tokens("connection")
        .any(|t| t.eq_ignore_ascii_case("upgrade"))
    {
        return Err(refuse(400, "missing `Connection: upgrade`"));
    }
    match request.header("sec-websocket-version").map(str::trim) {
        Some("13") => {}
        Some(_) | None => return Err(refuse(426, "unsupported Sec-WebSocket-Version (need 13)")),
    }
    let key = request
        .header("sec-websocket-key")
        .map(str::trim)
        .unwrap_or("");
    let decoded = base64::engine::general_purpose::STANDARD.decode(key);
    if !matches!(decoded, Ok(ref bytes) if bytes.len() == 16) {
        return Err(refuse(
            400,
            "Sec-WebSocket-Key is not 16 base64-encoded bytes",
        ));
    }
    request.key = key.to_owned();
    request.subprotocols = request
        .header_tokens("sec-websocket-protocol")
        .map(str::to_owned)
        .collect();
    Ok(request)
}

/// `Sec-WebSocket-Accept` for a client key: base64(SHA-1(key ++ GUID)).
pub fn accept_key(key: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(key.as_bytes());
    hasher.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
}

/// Appends the `101 Switching Protocols` response.
pub fn write_accept(
    out: &mut Vec<u8>,
    request: &HandshakeRequest,
    subprotocol: Option<&str>,
    extensions: Option<&str>,
    headers: &[(String, String)],
) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    push_header(out, "Sec-WebSocket-Accept", &accept_key(&request.key));
    if let Some(protocol) = subprotocol {
        push_header(out, "Sec-WebSocket-Protocol", protocol);
    }
    if let Some(extensions) = extensions {
        push_header(out, "Sec-WebSocket-Extensions", extensions);
    }
    for (name, value) in headers {
        push_header(out, name, value);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends an error response that closes the connection; 426 carries the supported version.
pub fn write_reject(out: &mut Vec<u8>, status: u16, reason: &str) {
    let phrase = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
    // The reason comes from code or the hook; keep the response one well-formed line anyway.
    let body: String = reason.chars().filter(|c| !c.is_control()).collect();
    out.extend_from_slice(format!("HTTP/1.1 {status} {phrase}\r\n").as_bytes());
    if status == 426 {
        push_header(out, "Sec-WebSocket-Version", "13");
    }
    push_header(out, "Content-Type", "text/plain; charset=utf-8");
    push_header(out, "Content-Length", &(body.len() + 1).to_string());
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
    out.push(b'\n');
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    // Header injection guard: names/values from the hook must not smuggle CR/LF.
    let clean = |s: &str| {
        s.chars()
            .filter(|c| *c != '\r' && *c != '\n')
            .collect::<String>()
    };
    out.extend_from_slice(clean(name).as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(clean(value).as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\n\
        Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn rfc_example_accept_key() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn parses_the_rfc_request_and_leaves_trailing_bytes() {
        let mut input = RFC_REQUEST.as_bytes().to_vec();
        input.extend_from_slice(&[0x81, 0x80]);
        let (req, consumed) = parse_request(&input, 8192, 32).unwrap().unwrap();
        assert_eq!(consumed, RFC_REQUEST.len());
        assert_eq!(req.path, "/chat");
        assert_eq!(req.subprotocols, vec!["chat", "superchat"]);
        assert_eq!(req.header("origin"), Some("http://example.com"));
        let mut out = Vec::new();
        write_accept(&mut out, &req, Some("chat"), None, &[]);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 "));
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.contains("Sec-WebSocket-Protocol: chat\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn partial_request_waits() {
        for cut in 0..RFC_REQUEST.len() {
            assert_eq!(
                parse_request(&RFC_REQUEST.as_bytes()[..cut], 8192, 32),
                Ok(None)
            );
        }
    }

    #[test]
    fn refusals_carry_the_right_status() {
        let status = |req: &str| parse_request(req.as_bytes(), 8192, 32).unwrap_err().status;
        assert_eq!(
            status(&RFC_REQUEST.replace("Version: 13", "Version: 8")),
            426
        );
        assert_eq!(status(&RFC_REQUEST.replace("GET", "POST")), 405);
        assert_eq!(status(&RFC_REQUEST.replace("HTTP/1.1", "HTTP/1.0")), 400);
        assert_eq!(
            status(&RFC_REQUEST.replace("Upgrade: websocket", "Upgrade: h2c")),
            400
        );
        assert_eq!(
            status(&RFC_REQUEST.replace("keep-alive, Upgrade", "close")),
            400
        );
        assert_eq!(
            status(&RFC_REQUEST.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=")),
            400
        );
        assert_eq!(status(&RFC_REQUEST.replace("Host", "Hast")), 400);
        assert_eq!(status("GARBAGE\0\r\n\r\n"), 400);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(9000));
        assert_eq!(status(&big), 431);
        let many: String = (0..40).map(|i| format!("X{i}: y\r\n")).collect();
        assert_eq!(status(&format!("GET / HTTP/1.1\r\n{many}\r\n")), 431);
    }

    #[test]
    fn reject_426_names_the_version() {
        let mut out = Vec::new();
        write_reject(&mut out, 426, "unsupported\r\nX-Evil: 1");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
        assert!(!text.contains("\r\nX-Evil"));
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_request(&data, 256, 8);
        }

        #[test]
        fn any_request_split_point_parses_the_same(cut in 0usize..300) {
            let bytes = RFC_REQUEST.as_bytes();
            let cut = cut.min(bytes.len());
            let partial = parse_request(&bytes[..cut], 8192, 32).unwrap();
            prop_assert_eq!(partial.is_some(), cut == bytes.len());
        }
    }
}
