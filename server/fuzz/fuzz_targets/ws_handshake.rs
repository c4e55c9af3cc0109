//! Fuzz target: the upgrade request parser, whole and cut at every 64-byte boundary, must never
//! panic, and a request it accepts must produce a well-formed 101 response.
#![no_main]

use gev::ws::handshake::{parse_request, write_accept};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for cut in (0..data.len()).step_by(64).chain([data.len()]) {
        if let Ok(Some((request, consumed))) = parse_request(&data[..cut], 8192, 64) {
            assert!(consumed <= cut);
            let mut out = Vec::new();
            write_accept(
                &mut out,
                &request,
                request.subprotocols.first().map(|s| s.as_str()),
                None,
                &[],
            );
            assert!(out.starts_with(b"HTTP/1.1 101 ") && out.ends_with(b"\r\n\r\n"));
        }
    }
});
