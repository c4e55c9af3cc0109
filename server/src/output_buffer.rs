//! A connection's pending output: replies are packed at the end, the loop writes from the front
//! once per iteration. The storage is taken back once everything is written, so an idle
//! connection holds no output memory; a partial write only advances an offset (no memmove).
//! Drained storage goes to the loop's [`BufferPool`] and is lent to the next connection that
//! produces output, so a busy loop does not allocate and free a buffer per message.

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

    /// Bytes of storage held.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// `n` bytes were written.
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        self.written += n;
    }

    /// Takes the storage out (pending bytes are dropped), leaving the buffer unallocated.
    #[inline]
    pub(crate) fn release(&mut self) -> Vec<u8> {
        self.written = 0;
        std::mem::take(&mut self.bytes)
    }

    /// Uses `storage` (empty, typically from the pool) if no storage is held.
    #[inline]
    pub(crate) fn install(&mut self, storage: Vec<u8>) {
        debug_assert!(storage.is_empty());
        if self.bytes.capacity() == 0 {
            self.bytes = storage;
            self.written = 0;
        }
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

/// Drained output buffers a loop keeps for reuse: a few, each no larger than a bound, so the
/// pool's memory is small and fixed.
#[derive(Debug)]
pub(crate) struct BufferPool {
    spare: Vec<Vec<u8>>,
    max_buffers: usize,
    max_capacity: usize,
}

impl BufferPool {
    pub(crate) fn new(max_buffers: usize, max_capacity: usize) -> Self {
        BufferPool {
            spare: Vec::with_capacity(max_buffers),
            max_buffers,
            max_capacity,
        }
    }

    /// An empty buffer, with capacity if one is spare.
    #[inline]
    pub(crate) fn take(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    /// Keeps `storage` for reuse if there is room and it is not too large; frees it otherwise.
    #[inline]
    pub(crate) fn give(&mut self, mut storage: Vec<u8>) {
        let capacity = storage.capacity();
        if capacity > 0 && capacity <= self.max_capacity && self.spare.len() < self.max_buffers {
            storage.clear();
            self.spare.push(storage);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_compact_release() {
        let mut out = OutputBuffer::default();
        out.vec_mut().extend_from_slice(b"hello");
        out.advance(2);
        assert_eq!(out.unwritten(), b"llo");
        out.compact();
        assert_eq!(out.unwritten(), b"llo");
        out.advance(3);
        assert!(out.is_empty());
        let storage = out.release();
        assert!(storage.capacity() >= 5);
        assert_eq!(out.capacity(), 0);
    }

    #[test]
    fn pool_is_bounded() {
        let mut pool = BufferPool::new(2, 1024);
        pool.give(Vec::with_capacity(4096)); // too large: freed
        pool.give(Vec::with_capacity(100));
        pool.give(Vec::with_capacity(100));
        pool.give(Vec::with_capacity(100)); // pool full: freed
        assert_eq!(pool.spare.len(), 2);
        let mut out = OutputBuffer::default();
        out.install(pool.take());
        assert!(out.capacity() >= 100);
        assert_eq!(pool.take().capacity(), 100);
        assert_eq!(pool.take().capacity(), 0);
    }
}
