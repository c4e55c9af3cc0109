//! A connection's pending output: replies are packed at the end, the loop writes from the front
//! once per iteration. The storage is freed once everything is written, so an idle connection
//! holds no output memory; a partial write only advances an offset (no memmove).

/// Bytes waiting to be written to one socket.
#[derive(Debug, Default)]
pub(crate) struct OutputBuffer {
    bytes: Vec<u8>,
    written: usize,
}

impl OutputBuffer {
    /// Bytes not written yet.
    #[inline]
    pub(crate) fn pending(&self) -> usize {
        self.bytes.len() - self.written
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.pending() == 0
    }

    /// The buffer protocols append to.
    #[inline]
    pub(crate) fn vec_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// The bytes to write next.
    #[inline]
    pub(crate) fn unwritten(&self) -> &[u8] {
        &self.bytes[self.written..]
    }

    /// `n` bytes were written; releases the storage when nothing is left.
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        self.written += n;
        if self.written >= self.bytes.len() {
            self.clear();
        }
    }

    /// Drops all pending bytes and the storage.
    pub(crate) fn clear(&mut self) {
        self.bytes = Vec::new();
        self.written = 0;
    }

    /// Compacts when the written prefix dominates, so a connection that is written slowly while
    /// replies keep being appended does not keep its whole history.
    pub(crate) fn compact(&mut self) {
        if self.written > 0 && self.written >= self.bytes.len() / 2 {
            self.bytes.drain(..self.written);
            self.written = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_releases_when_drained() {
        let mut out = OutputBuffer::default();
        out.vec_mut().extend_from_slice(b"hello");
        out.advance(2);
        assert_eq!(out.unwritten(), b"llo");
        out.compact();
        assert_eq!(out.unwritten(), b"llo");
        out.advance(3);
        assert!(out.is_empty());
        assert_eq!(out.bytes.capacity(), 0);
    }
}
