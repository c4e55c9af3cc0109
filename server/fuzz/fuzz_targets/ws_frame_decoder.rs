//! Fuzz target: the frame decoder after a completed handshake (with permessage-deflate), fed the
//! input in chunks whose size the first byte picks. It must never panic, never report using more
//! bytes than it was given, and stop at the first error like the server does.
#![no_main]

use gev::ws::{AcceptAll, Decoded, WebSocketConfig, WsDecoder, WsEncoder};
use libfuzzer_sys::fuzz_target;

const UPGRADE: &[u8] =
    b"GET / HTTP/1.1\r\nHost: f\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, frames)) = data.split_first() else {
        return;
    };
    let config = WebSocketConfig::default()
        .max_frame_size(1 << 16)
        .max_message_size(1 << 18);
    let mut decoder = WsDecoder::default();
    let mut encoder = WsEncoder::default();
    let mut input = UPGRADE.to_vec();
    let mut out = Vec::new();
    for piece in std::iter::once(&[][..]).chain(frames.chunks(usize::from(chunk).max(1))) {
        input.extend_from_slice(piece);
        loop {
            match decoder.decode(&config, &AcceptAll, &mut encoder, &mut input, &mut out) {
                Ok(Decoded::Incomplete) => break,
                Ok(Decoded::Skip(n)) | Ok(Decoded::Message { consumed: n, .. }) => {
                    assert!(n <= input.len());
                    input.drain(..n);
                }
                Err(_) => return,
            }
        }
    }
});
