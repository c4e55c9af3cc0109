//! permessage-deflate (RFC 7692): negotiation, and the per-connection inflater and deflater.
//!
//! Negotiation happens once, in the handshake: [`negotiate`] walks the client's offers in order
//! and accepts the first one whose parameters it can honour, answering with the response
//! parameters. Then the decoder feeds each compressed message's payload to an [`Inflater`]
//! (raw deflate, flate2) as it is unmasked, and the encoder compresses outgoing messages with a
//! [`Deflater`].
//!
//! What is honoured, and how: `server_no_context_takeover` (the deflater is reset after every
//! message), `client_no_context_takeover` (acknowledged; the inflater is reset after every
//! message), `client_max_window_bits` (accepted with or without a value: inflating with a 32 KiB
//! window reads any smaller window). `server_max_window_bits=N` asks us to compress with a window
//! of at most 2^N bytes; flate2's default backend (miniz_oxide) always uses 2^15, so for N < 15
//! the offer is accepted and the server then frames its messages as deflate *stored* blocks
//! (RSV1 set: a valid deflate stream with no back-references, so no window is used at all). That
//! respects any window limit while still reading the client's compressed messages. (Sending them
//! uncompressed with RSV1 clear would also conform to RFC 7692 §6, but kosoku 0.1.0's client
//! fails on uncompressed messages of a deflate connection.) Offers with unknown, duplicated or
//! out-of-range parameters are declined (RFC 7692 §5.1), and the next offer is tried.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::error::WsError;

/// The empty stored block every sync-flushed message ends with; stripped by the sender and put
/// back by the receiver (RFC 7692 §7.2.1-7.2.2).
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Negotiated permessage-deflate parameters of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// Reset our compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message (we reset our inflater too).
    pub client_no_context_takeover: bool,
    /// The window the client allowed us to compress with (8-15).
    pub server_max_window_bits: u8,
}

impl DeflateParams {
    /// Whether outgoing messages may be compressed with flate2's fixed 2^15 window.
    pub fn can_compress(&self) -> bool {
        self.server_max_window_bits == 15
    }

    /// The `Sec-WebSocket-Extensions` response value.
    pub fn response(&self) -> String {
        let mut response = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            response.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            response.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits != 15 {
            response.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        response
    }
}

/// Picks the first acceptable permessage-deflate offer among the `Sec-WebSocket-Extensions`
/// header values (each may hold several comma-separated offers). `None`: no acceptable offer.
pub fn negotiate<'a>(header_values: impl IntoIterator<Item = &'a str>) -> Option<DeflateParams> {
    header_values
        .into_iter()
        .flat_map(|v| v.split(','))
        .find_map(|offer| accept_offer(offer.trim()))
}

fn accept_offer(offer: &str) -> Option<DeflateParams> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut params = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
    };
    let (mut seen_snct, mut seen_cnct, mut seen_smwb, mut seen_cmwb) = (false, false, false, false);
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (part, None),
        };
        let once = |seen: &mut bool| {
            if std::mem::replace(seen, true) {
                None
            } else {
                Some(())
            }
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) => {
                once(&mut seen_snct)?;
                params.server_no_context_takeover = true;
            }
            ("client_no_context_takeover", None) => {
                once(&mut seen_cnct)?;
                params.client_no_context_takeover = true;
            }
            ("server_max_window_bits", Some(bits)) => {
                once(&mut seen_smwb)?;
                params.server_max_window_bits = window_bits(bits)?;
            }
            ("client_max_window_bits", None) => once(&mut seen_cmwb)?,
            ("client_max_window_bits", Some(bits)) => {
                once(&mut seen_cmwb)?;
                window_bits(bits)?;
            }
            _ => return None,
        }
    }
    Some(params)
}

/// A window-bits value: 1-2 decimal digits, 8..=15 (RFC 7692 §7.1.2).
fn window_bits(value: &str) -> Option<u8> {
    if value.is_empty() || value.len() > 2 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = value.parse().ok()?;
    (8..=15).contains(&bits).then_some(bits)
}

/// Decompresses the client's messages, piece by piece as they are unmasked.
pub struct Inflater {
    inner: Decompress,
    reset_after_message: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("reset_after_message", &self.reset_after_message)
            .finish()
    }
}

impl Inflater {
    pub fn new(params: &DeflateParams) -> Self {
        Inflater {
            inner: Decompress::new(false),
            reset_after_message: params.client_no_context_takeover,
        }
    }

    /// Inflates `input` (a piece of a compressed message) onto `out`, failing once `out` would
    /// pass `max_len` (so a small "zip bomb" cannot grow memory beyond the message limit).
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_len: usize,
    ) -> Result<(), WsError> {
        let mut input = input;
        loop {
            if out.capacity() - out.len() < 1024 {
                // Grow in bounded steps: at most 64 KiB beyond what is already inflated.
                out.reserve((input.len() * 4).clamp(4096, 64 << 10));
            }
            let (in_before, out_before) = (self.inner.total_in(), self.inner.total_out());
            let status = self
                .inner
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|e| WsError::Inflate(e.to_string()))?;
            let read = (self.inner.total_in() - in_before) as usize;
            let written = (self.inner.total_out() - out_before) as usize;
            input = &input[read..];
            if out.len() > max_len {
                return Err(WsError::MessageTooLarge {
                    size: out.len() as u64,
                    max: max_len,
                });
            }
            let output_full = out.len() == out.capacity();
            if status == Status::StreamEnd {
                // A final block (BFINAL) ends the stream; the next message starts a new one.
                self.inner.reset(false);
                return Ok(());
            }
            if input.is_empty() && !output_full {
                return Ok(());
            }
            if read == 0 && written == 0 && !output_full {
                return Err(WsError::Inflate("compressed data makes no progress".into()));
            }
        }
    }

    /// Ends a message: inflates the stripped sync tail, and resets if context takeover is off.
    pub fn finish_message(&mut self, out: &mut Vec<u8>, max_len: usize) -> Result<(), WsError> {
        self.inflate(&SYNC_TAIL, out, max_len)?;
        if self.reset_after_message {
            self.inner.reset(false);
        }
        Ok(())
    }

    /// Forgets a half-inflated message (the connection is failing).
    pub fn reset(&mut self) {
        self.inner.reset(false);
    }
}

/// Compresses the server's outgoing messages.
pub struct Deflater {
    /// `None`: the client limited our window below 2^15; messages go out as stored blocks.
    inner: Option<Compress>,
    reset_after_message: bool,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("stored_blocks_only", &self.inner.is_none())
            .field("reset_after_message", &self.reset_after_message)
            .finish()
    }
}

/// Largest stored block payload (its length field is 16 bits).
const MAX_STORED_BLOCK: usize = 0xffff;

impl Deflater {
    pub fn new(params: &DeflateParams, level: u32) -> Self {
        Deflater {
            inner: params
                .can_compress()
                .then(|| Compress::new(Compression::new(level.min(9)), false)),
            reset_after_message: params.server_no_context_takeover,
        }
    }

    /// Appends the compressed form of one whole message (sync-flushed, tail stripped) to `out`.
    pub fn compress_message(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let Some(inner) = self.inner.as_mut() else {
            write_stored_blocks(payload, out);
            return;
        };
        let start = out.len();
        let mut input = payload;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(input.len() / 2 + 128);
            }
            let in_before = inner.total_in();
            // Compressing into a Vec never fails: errors are only for misuse of the stream.
            let _ = inner.compress_vec(input, out, FlushCompress::Sync);
            input = &input[(inner.total_in() - in_before) as usize..];
            // Done once all input is taken and the flush left spare room (nothing held back).
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if out[start..].ends_with(&SYNC_TAIL) {
            out.truncate(out.len() - SYNC_TAIL.len());
        }
        if self.reset_after_message {
            inner.reset();
        }
    }
}

/// A message as non-final stored deflate blocks (RFC 1951 §3.2.4) followed by the first byte of
/// the empty sync block whose 4-byte tail the receiver appends (RFC 7692 §7.2.1).
fn write_stored_blocks(payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(payload.len() + 5 * (payload.len() / MAX_STORED_BLOCK + 1) + 1);
    for block in payload.chunks(MAX_STORED_BLOCK) {
        let len = block.len() as u16;
        out.push(0x00); // BFINAL = 0, BTYPE = 00 (stored), padded to the byte boundary
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.push(0x00);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params() -> DeflateParams {
        negotiate(["permessage-deflate"]).unwrap()
    }

    #[test]
    fn negotiation() {
        let p = negotiate(["permessage-deflate; client_max_window_bits"]).unwrap();
        assert_eq!(p.response(), "permessage-deflate");
        let p = negotiate([
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ])
        .unwrap();
        assert_eq!(
            p.response(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        let p = negotiate(["permessage-deflate; server_max_window_bits=9"]).unwrap();
        assert_eq!(p.response(), "permessage-deflate; server_max_window_bits=9");
        assert!(!p.can_compress());
        let p = negotiate(["permessage-deflate; server_max_window_bits=\"15\""]).unwrap();
        assert!(p.can_compress());
        // Declined offers: the next one is taken.
        let p = negotiate([
            "permessage-deflate; server_max_window_bits=7, permessage-deflate; x=1",
            "x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover",
        ])
        .unwrap();
        assert!(p.client_no_context_takeover);
        assert_eq!(
            negotiate(["permessage-deflate; server_max_window_bits"]),
            None
        );
        assert_eq!(
            negotiate(["permessage-deflate; client_max_window_bits=16"]),
            None
        );
        assert_eq!(
            negotiate(["permessage-deflate; server_no_context_takeover=1"]),
            None
        );
        assert_eq!(
            negotiate([
                "permessage-deflate; client_no_context_takeover; client_no_context_takeover"
            ]),
            None
        );
        assert_eq!(negotiate(["foo"]), None);
    }

    #[test]
    fn rfc_7692_example_hello() {
        // §7.2.3.1: "Hello" compressed without context takeover.
        let mut inflater = Inflater::new(&params());
        let mut out = Vec::new();
        inflater
            .inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out, 100)
            .unwrap();
        inflater.finish_message(&mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn inflate_limit_stops_a_bomb() {
        let mut deflater = Deflater::new(&params(), 9);
        let mut compressed = Vec::new();
        deflater.compress_message(&vec![0u8; 1 << 20], &mut compressed);
        assert!(compressed.len() < 5000);
        let mut inflater = Inflater::new(&params());
        let mut out = Vec::new();
        let err = inflater.inflate(&compressed, &mut out, 1000).unwrap_err();
        assert!(matches!(err, WsError::MessageTooLarge { .. }));
        assert!(out.capacity() < 200 << 10);
    }

    #[test]
    fn garbage_does_not_inflate() {
        let mut inflater = Inflater::new(&params());
        let mut out = Vec::new();
        let r = inflater
            .inflate(&[0xff; 64], &mut out, 1 << 20)
            .and_then(|_| inflater.finish_message(&mut out, 1 << 20));
        assert!(matches!(r, Err(WsError::Inflate(_))));
    }

    #[test]
    fn small_window_uses_stored_blocks_that_inflate() {
        let p = negotiate(["permessage-deflate; server_max_window_bits=9"]).unwrap();
        let mut deflater = Deflater::new(&p, 6);
        let mut inflater = Inflater::new(&p);
        for message in [Vec::new(), b"abc".to_vec(), vec![7u8; 200_000]] {
            let mut compressed = Vec::new();
            deflater.compress_message(&message, &mut compressed);
            assert!(compressed.len() > message.len(), "stored, not compressed");
            let mut out = Vec::new();
            inflater.inflate(&compressed, &mut out, 1 << 20).unwrap();
            inflater.finish_message(&mut out, 1 << 20).unwrap();
            assert_eq!(out, message);
        }
    }

    proptest! {
        #[test]
        fn round_trip_with_context_takeover(messages in proptest::collection::vec(
            proptest::collection::vec(0u8..4, 0..3000), 1..5), splits in 1usize..700,
            no_context in any::<bool>()) {
            let mut p = params();
            p.server_no_context_takeover = no_context;
            p.client_no_context_takeover = no_context;
            let mut deflater = Deflater::new(&p, 6);
            let mut inflater = Inflater::new(&p);
            for message in &messages {
                let mut compressed = Vec::new();
                deflater.compress_message(message, &mut compressed);
                let mut out = Vec::new();
                for piece in compressed.chunks(splits) {
                    inflater.inflate(piece, &mut out, 1 << 20).unwrap();
                }
                inflater.finish_message(&mut out, 1 << 20).unwrap();
                prop_assert_eq!(&out, message);
            }
        }

        #[test]
        fn inflate_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut inflater = Inflater::new(&params());
            let mut out = Vec::new();
            let _ = inflater.inflate(&data, &mut out, 1 << 16)
                .and_then(|_| inflater.finish_message(&mut out, 1 << 16));
        }
    }
}
