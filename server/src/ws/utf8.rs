//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! A text message may be split across fragments, and a fragment across reads; RFC 6455 §8.1 asks
//! the endpoint to fail the connection as soon as the bytes cannot be UTF-8 (Autobahn 6.4.x sends
//! the invalid byte in the middle of a frame and waits). The decoder feeds every piece of text
//! payload here as it is unmasked. `std::str::from_utf8` does the work: its `Utf8Error` says
//! whether the input is *wrong* (`error_len() == Some`) or merely *cut short* (`None`, in which
//! case the 1-3 byte tail is a valid prefix of a code point and is kept for the next piece).

/// Carries the state of a UTF-8 check across pieces of one message.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    /// Bytes of a code point cut at the end of the previous piece (at most 3).
    pending: [u8; 4],
    pending_len: u8,
}

/// The bytes fed so far can not be the beginning of valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next piece. Fails on the first byte that makes the input invalid, even if the
    /// code point it belongs to is not complete yet.
    pub fn feed(&mut self, mut piece: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            // Complete the cut code point byte by byte: each added byte is checked at once.
            while self.pending_len > 0 && !piece.is_empty() {
                self.pending[self.pending_len as usize] = piece[0];
                self.pending_len += 1;
                piece = &piece[1..];
                match std::str::from_utf8(&self.pending[..self.pending_len as usize]) {
                    Ok(_) => self.pending_len = 0,
                    Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                    Err(_) => {}
                }
            }
            if self.pending_len > 0 {
                return Ok(());
            }
        }
        match std::str::from_utf8(piece) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                let tail = &piece[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Ends the message: fails if it stopped in the middle of a code point. Resets the validator.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let cut = self.pending_len > 0;
        self.pending_len = 0;
        if cut {
            Err(InvalidUtf8)
        } else {
            Ok(())
        }
    }

    /// Forgets any state (used when a connection is failed mid-message).
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_pieces(pieces: &[&[u8]]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        for p in pieces {
            v.feed(p)?;
        }
        v.finish()
    }

    #[test]
    fn fails_on_first_invalid_byte_mid_code_point() {
        let mut v = Utf8Validator::new();
        // "κόσμε", F4 90: 0x90 after F4 is out of range, caught before the code point ends.
        v.feed("κόσμε".as_bytes()).unwrap();
        v.feed(&[0xf4]).unwrap();
        assert_eq!(v.feed(&[0x90]), Err(InvalidUtf8));
    }

    #[test]
    fn cut_code_point_across_pieces_is_fine() {
        let euro = "€".as_bytes();
        assert_eq!(check_pieces(&[&euro[..1], &euro[1..2], &euro[2..]]), Ok(()));
        assert_eq!(check_pieces(&[&euro[..2]]), Err(InvalidUtf8));
        assert_eq!(check_pieces(&[&[0xed, 0xa0], &[0x80]]), Err(InvalidUtf8)); // surrogate
        assert_eq!(check_pieces(&[&[0xc0]]), Err(InvalidUtf8)); // overlong lead fails at once
    }

    proptest! {
        #[test]
        fn agrees_with_std_for_any_split(data in proptest::collection::vec(any::<u8>(), 0..64),
                                         cuts in proptest::collection::vec(0usize..64, 0..6)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for c in cuts { pieces.push(&data[start..c]); start = c; }
            pieces.push(&data[start..]);
            let expected = std::str::from_utf8(&data).is_ok();
            prop_assert_eq!(check_pieces(&pieces).is_ok(), expected);
        }

        #[test]
        fn valid_text_split_anywhere_passes(text in "\\PC{0,20}", cut in 0usize..80) {
            let bytes = text.as_bytes();
            let cut = cut.min(bytes.len());
            prop_assert_eq!(check_pieces(&[&bytes[..cut], &bytes[cut..]]), Ok(()));
        }
    }
}
