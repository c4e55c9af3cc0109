//! Decoder tests: a small driver plays the core's part (buffer input, call `decode` until
//! `Incomplete`, drop consumed bytes), fed in arbitrary chunk sizes.

use super::*;
use crate::ws::deflate::{negotiate, Deflater};
use crate::ws::handshake::AcceptAll;
use proptest::prelude::*;

const UPGRADE: &str = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Open(String),
    Text(String),
    Binary(Vec<u8>),
    Close(Option<u16>, String),
    Error(WsError),
}

struct Driver {
    config: WebSocketConfig,
    decoder: WsDecoder,
    encoder: WsEncoder,
    input: Vec<u8>,
    out: Vec<u8>,
    events: Vec<Event>,
    failed: bool,
}

impl Driver {
    fn new(config: WebSocketConfig) -> Self {
        Driver {
            config,
            decoder: WsDecoder::default(),
            encoder: WsEncoder::default(),
            input: Vec::new(),
            out: Vec::new(),
            events: Vec::new(),
            failed: false,
        }
    }

    fn open(extensions: Option<&str>) -> Self {
        let mut d = Driver::new(WebSocketConfig::default());
        let mut request = UPGRADE.to_string();
        if let Some(ext) = extensions {
            request.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
        }
        request.push_str("\r\n");
        d.feed(request.as_bytes());
        assert_eq!(d.events, vec![Event::Open("/echo".into())]);
        d.events.clear();
        d.out.clear();
        d
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        self.input.extend_from_slice(bytes);
        loop {
            let step = self.decoder.decode(
                &self.config,
                &AcceptAll,
                &mut self.encoder,
                &mut self.input,
                &mut self.out,
            );
            let consumed = match step {
                Ok(Decoded::Incomplete) => break,
                Ok(Decoded::Skip(n)) => {
                    assert!(n > 0, "Skip(0) would spin the core");
                    n
                }
                Ok(Decoded::Message { consumed, message }) => {
                    self.events.push(match message {
                        WsMessage::Open(r) => Event::Open(r.path.clone()),
                        WsMessage::Text(t) => Event::Text(t.to_owned()),
                        WsMessage::Binary(b) => Event::Binary(b.to_vec()),
                        WsMessage::Close { code, reason } => Event::Close(code, reason.to_owned()),
                    });
                    consumed
                }
                Err(e) => {
                    self.events.push(Event::Error(e));
                    self.failed = true;
                    break;
                }
            };
            self.input.drain(..consumed);
        }
    }

    fn feed_chunked(&mut self, bytes: &[u8], chunk: usize) {
        for piece in bytes.chunks(chunk.max(1)) {
            self.feed(piece);
        }
    }

    /// The close code of the Close frame the server sent last (if any).
    fn sent_close_code(&self) -> Option<u16> {
        let mut at = 0;
        let mut code = None;
        while at + 2 <= self.out.len() {
            let len = (self.out[at + 1] & 0x7f) as usize;
            let (hdr, len) = match len {
                126 => (
                    4,
                    u16::from_be_bytes([self.out[at + 2], self.out[at + 3]]) as usize,
                ),
                127 => (
                    10,
                    u64::from_be_bytes(self.out[at + 2..at + 10].try_into().unwrap()) as usize,
                ),
                l => (2, l),
            };
            if self.out[at] & 0x0f == 0x8 && len >= 2 {
                code = Some(u16::from_be_bytes([
                    self.out[at + hdr],
                    self.out[at + hdr + 1],
                ]));
            }
            at += hdr + len;
        }
        code
    }
}

/// A masked client frame.
fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut out = vec![b0];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 65536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

#[test]
fn handshake_then_echoable_messages() {
    let mut d = Driver::open(None);
    assert!(!d.decoder.in_handshake());
    d.feed(&frame(0x81, b"hello"));
    d.feed(&frame(0x82, &[1, 2, 3]));
    assert_eq!(
        d.events,
        vec![Event::Text("hello".into()), Event::Binary(vec![1, 2, 3])]
    );
}

#[test]
fn handshake_response_and_refusal() {
    let mut d = Driver::new(WebSocketConfig::default());
    d.feed(format!("{UPGRADE}\r\n").as_bytes());
    let response = String::from_utf8(d.out.clone()).unwrap();
    assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    let mut d = Driver::new(WebSocketConfig::default());
    d.feed(format!("{}\r\n", UPGRADE.replace("Version: 13", "Version: 7")).as_bytes());
    assert!(matches!(
        d.events[0],
        Event::Error(WsError::Handshake { status: 426, .. })
    ));
    assert!(String::from_utf8_lossy(&d.out).starts_with("HTTP/1.1 426"));
}

#[test]
fn hook_rejects_by_path_and_picks_subprotocol() {
    let hook = |r: &HandshakeRequest| {
        if r.path != "/ok" {
            HandshakeDecision::Reject {
                status: 404,
                reason: "no such endpoint".into(),
            }
        } else {
            HandshakeDecision::Accept {
                subprotocol: Some("chat".into()),
                headers: vec![],
            }
        }
    };
    let config = WebSocketConfig::default();
    for (path, expect) in [("/nope", "HTTP/1.1 404"), ("/ok", "HTTP/1.1 101")] {
        let mut decoder = WsDecoder::default();
        let mut encoder = WsEncoder::default();
        let mut input = format!(
            "{}Sec-WebSocket-Protocol: x, chat\r\n\r\n",
            UPGRADE.replace("/echo", path)
        )
        .into_bytes();
        let mut out = Vec::new();
        let _ = decoder.decode(&config, &hook, &mut encoder, &mut input, &mut out);
        let response = String::from_utf8(out).unwrap();
        assert!(response.starts_with(expect), "{response}");
        assert_eq!(
            path == "/ok",
            response.contains("Sec-WebSocket-Protocol: chat\r\n")
        );
    }
}

#[test]
fn ping_is_answered_with_same_payload_between_fragments() {
    let mut d = Driver::open(None);
    d.feed(&frame(0x01, b"frag"));
    d.feed(&frame(0x89, b"ping!"));
    d.feed(&frame(0x80, b"ment"));
    assert_eq!(d.events, vec![Event::Text("fragment".into())]);
    assert_eq!(&d.out, &[0x8A, 5, b'p', b'i', b'n', b'g', b'!']);
}

#[test]
fn close_is_validated_and_echoed() {
    let mut d = Driver::open(None);
    let mut payload = 4000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    d.feed(&frame(0x88, &payload));
    assert_eq!(d.events, vec![Event::Close(Some(4000), "bye".into())]);
    assert_eq!(d.sent_close_code(), Some(4000));
    // Input after the close is ignored.
    d.feed(&frame(0x81, b"late"));
    assert_eq!(d.events.len(), 1);

    let mut d = Driver::open(None);
    d.feed(&frame(0x88, &[]));
    assert_eq!(d.events, vec![Event::Close(None, String::new())]);
    assert_eq!(d.out, [0x88, 0]);
}

#[test]
fn protocol_errors_map_to_close_codes() {
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (frame(0x80, b"x"), 1002), // continuation with nothing to continue
        (frame(0x83, b""), 1002),  // reserved opcode
        (frame(0xC1, b"x"), 1002), // RSV1 without permessage-deflate
        (frame(0x88, &[3]), 1002), // 1-byte close
        (frame(0x88, &1005u16.to_be_bytes()), 1002), // invalid close code
        (frame(0x81, &[0xff]), 1007), // invalid UTF-8
        ([frame(0x88, &[0x03, 0xe8, 0xff])].concat(), 1007), // invalid close reason
        ([frame(0x01, b"a"), frame(0x81, b"b")].concat(), 1002), // new message mid-fragment
        (vec![0x81, 0x00], 1002),  // unmasked
    ];
    for (bytes, code) in cases {
        let mut d = Driver::open(None);
        d.feed(&bytes);
        assert!(
            matches!(d.events.last(), Some(Event::Error(_))),
            "{bytes:02x?}: {:?}",
            d.events
        );
        assert_eq!(d.sent_close_code(), Some(code), "{bytes:02x?}");
    }
}

#[test]
fn limits_give_1009_before_the_payload_arrives() {
    let mut d = Driver::open(None);
    d.config.max_frame_size = 1000;
    d.feed(&frame(0x82, &[0; 2000])[..8]);
    assert_eq!(d.sent_close_code(), Some(1009));

    let mut d = Driver::open(None);
    d.config.max_message_size = 1500;
    d.feed(&frame(0x02, &[0; 1000]));
    d.feed(&frame(0x80, &[0; 1000])[..8]);
    assert_eq!(d.sent_close_code(), Some(1009));
}

#[test]
fn invalid_utf8_fails_mid_frame() {
    // Autobahn 6.4.3: the frame's first part holds the invalid byte, the rest never comes.
    let mut d = Driver::open(None);
    let mut payload = "κόσμε".as_bytes().to_vec();
    payload.extend_from_slice(&[0xf4, 0x90, 0x80, 0x80]);
    payload.extend_from_slice(b"edited");
    let bytes = frame(0x81, &payload);
    d.feed(&bytes[..6 + "κόσμε".len() + 2]);
    assert_eq!(d.events, vec![Event::Error(WsError::InvalidUtf8)]);
    assert_eq!(d.sent_close_code(), Some(1007));
}

#[test]
fn compressed_messages_inflate_fragmented_or_not() {
    let mut d = Driver::open(Some("permessage-deflate; client_max_window_bits"));
    let params = negotiate(["permessage-deflate"]).unwrap();
    let mut deflater = Deflater::new(&params, 6);
    let text = "compress me ".repeat(50);
    let mut compressed = Vec::new();
    deflater.compress_message(text.as_bytes(), &mut compressed);
    d.feed(&frame(0xC1, &compressed));
    let mut compressed2 = Vec::new();
    deflater.compress_message(text.as_bytes(), &mut compressed2);
    let (a, b) = compressed2.split_at(compressed2.len() / 2);
    d.feed(&[frame(0x41, a), frame(0x89, b"p"), frame(0x80, b)].concat());
    assert_eq!(d.events, vec![Event::Text(text.clone()), Event::Text(text)]);
}

#[test]
fn rfc_7692_example_hello() {
    let mut d = Driver::open(Some("permessage-deflate"));
    d.feed(&frame(0xC1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]));
    assert_eq!(d.events, vec![Event::Text("Hello".into())]);
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_messages(
        messages in proptest::collection::vec((any::<bool>(), "\\PC{0,300}", 1usize..5), 1..6),
        chunk in 1usize..200)
    {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (binary, text, pieces) in &messages {
            let bytes = text.as_bytes();
            let size = bytes.len().div_ceil(*pieces).max(1);
            let parts: Vec<&[u8]> = if bytes.is_empty() { vec![&[][..]] } else { bytes.chunks(size).collect() };
            for (i, part) in parts.iter().enumerate() {
                let fin = if i + 1 == parts.len() { 0x80 } else { 0 };
                let op = if i > 0 { 0 } else if *binary { 2 } else { 1 };
                wire.extend(frame(fin | op, part));
                if i == 0 { wire.extend(frame(0x89, b"interleaved ping")); }
            }
            expected.push(if *binary { Event::Binary(bytes.to_vec()) } else { Event::Text(text.clone()) });
        }
        let mut d = Driver::open(None);
        d.feed_chunked(&wire, chunk);
        prop_assert_eq!(d.events, expected);
        prop_assert!(d.input.is_empty());
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..600),
                                       chunk in 1usize..64, deflate in any::<bool>()) {
        let mut d = Driver::open(deflate.then_some("permessage-deflate"));
        d.config.max_frame_size = 4096;
        d.config.max_message_size = 8192;
        d.feed_chunked(&data, chunk);
        prop_assert!(d.events.iter().filter(|e| matches!(e, Event::Error(_))).count() <= 1);
    }

    #[test]
    fn handshake_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600), chunk in 1usize..64) {
        let mut d = Driver::new(WebSocketConfig::default());
        d.feed_chunked(&data, chunk);
    }
}
