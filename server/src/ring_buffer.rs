//! The per-connection input buffer for incomplete frames.
//!
//! Reads land in the loop's shared scratch buffer; only the bytes of a frame that is not complete
//! yet are copied here, and the storage is released as soon as the buffer empties, so an idle
//! connection holds no input memory. The protocol needs its input contiguous
//! ([`RingBuffer::make_contiguous`]); the ring lets `retrieve` be O(1) and writes reuse the space
//! freed at the front without moving bytes in the common case.

/// A growable byte ring buffer that owns no memory while empty.
///
/// ```
/// use gev::RingBuffer;
///
/// let mut buf = RingBuffer::new();
/// buf.write(b"hello world");
/// assert_eq!(buf.peek(5), (&b"hello"[..], &b""[..]));
/// buf.retrieve(6);
/// assert_eq!(buf.make_contiguous(), b"world");
/// buf.retrieve_all();
/// assert_eq!(buf.capacity(), 0);
/// ```
#[derive(Default)]
pub struct RingBuffer {
    storage: Box<[u8]>,
    head: usize,
    len: usize,
}

/// Smallest allocation: below this, growth by doubling would reallocate too often.
const MIN_CAPACITY: usize = 256;

impl RingBuffer {
    /// An empty buffer with no allocation.
    pub fn new() -> Self {
        RingBuffer::default()
    }

    /// Bytes buffered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of storage currently allocated.
    pub fn capacity(&self) -> usize {
        self.storage.len()
    }

    /// Appends `data`, growing (to the next power of two that fits) when needed.
    pub fn write(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let needed = self.len + data.len();
        if needed > self.capacity() {
            self.grow(needed);
        }
        let cap = self.capacity();
        let tail = (self.head + self.len) % cap;
        let first = data.len().min(cap - tail);
        self.storage[tail..tail + first].copy_from_slice(&data[..first]);
        self.storage[..data.len() - first].copy_from_slice(&data[first..]);
        self.len = needed;
    }

    /// Up to `n` bytes from the front, as the two slices they occupy (the second is empty unless
    /// the bytes wrap around the end of the storage).
    pub fn peek(&self, n: usize) -> (&[u8], &[u8]) {
        let n = n.min(self.len);
        let first = n.min(self.capacity() - self.head);
        if first == 0 {
            return (&[], &[]);
        }
        (
            &self.storage[self.head..self.head + first],
            &self.storage[..n - first],
        )
    }

    /// All buffered bytes as two slices (see [`peek`](Self::peek)).
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        self.peek(self.len)
    }

    /// Drops `n` bytes from the front (all of them if `n >= len`); frees the storage when the
    /// buffer becomes empty.
    pub fn retrieve(&mut self, n: usize) {
        if n >= self.len {
            self.retrieve_all();
            return;
        }
        self.head = (self.head + n) % self.capacity();
        self.len -= n;
    }

    /// Drops everything and frees the storage.
    pub fn retrieve_all(&mut self) {
        self.storage = Box::default();
        self.head = 0;
        self.len = 0;
    }

    /// The buffered bytes as one mutable slice, moving them to the front of the storage first if
    /// they wrap (rare: only when a write wrapped around a partly retrieved buffer).
    pub fn make_contiguous(&mut self) -> &mut [u8] {
        if self.head + self.len > self.capacity() {
            self.storage.rotate_left(self.head);
            self.head = 0;
        }
        &mut self.storage[self.head..self.head + self.len]
    }

    fn grow(&mut self, needed: usize) {
        let new_cap = needed.max(MIN_CAPACITY).next_power_of_two();
        let mut storage = vec![0u8; new_cap].into_boxed_slice();
        let (a, b) = self.as_slices();
        storage[..a.len()].copy_from_slice(a);
        storage[a.len()..a.len() + b.len()].copy_from_slice(b);
        self.storage = storage;
        self.head = 0;
    }
}

impl std::fmt::Debug for RingBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingBuffer")
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    #[derive(Debug, Clone)]
    enum Op {
        Write(Vec<u8>),
        Retrieve(usize),
        RetrieveAll,
        MakeContiguous,
        Peek(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..700).prop_map(Op::Write),
            3 => (0usize..800).prop_map(Op::Retrieve),
            1 => Just(Op::RetrieveAll),
            1 => Just(Op::MakeContiguous),
            1 => (0usize..800).prop_map(Op::Peek),
        ]
    }

    proptest! {
        #[test]
        fn behaves_like_vecdeque(ops in proptest::collection::vec(op(), 0..200)) {
            let mut ring = RingBuffer::new();
            let mut model: VecDeque<u8> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Write(data) => {
                        ring.write(&data);
                        model.extend(&data);
                    }
                    Op::Retrieve(n) => {
                        ring.retrieve(n);
                        model.drain(..n.min(model.len()));
                    }
                    Op::RetrieveAll => {
                        ring.retrieve_all();
                        model.clear();
                    }
                    Op::MakeContiguous => {
                        let got = ring.make_contiguous().to_vec();
                        prop_assert_eq!(got, model.iter().copied().collect::<Vec<_>>());
                    }
                    Op::Peek(n) => {
                        let (a, b) = ring.peek(n);
                        let got: Vec<u8> = a.iter().chain(b).copied().collect();
                        let want: Vec<u8> = model.iter().take(n).copied().collect();
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(ring.len(), model.len());
                prop_assert_eq!(ring.is_empty(), model.is_empty());
                if model.is_empty() {
                    prop_assert_eq!(ring.capacity(), 0, "storage is released when empty");
                }
                let (a, b) = ring.as_slices();
                prop_assert_eq!(a.len() + b.len(), model.len());
            }
        }
    }

    #[test]
    fn wraps_and_unwraps() {
        let mut ring = RingBuffer::new();
        ring.write(&[1; 200]);
        ring.retrieve(150);
        ring.write(&[2; 100]); // 50 + 100 = 150 <= 256: wraps around the end
        let (a, b) = ring.as_slices();
        assert!(!b.is_empty(), "expected a wrap");
        assert_eq!(a.len() + b.len(), 150);
        let all = ring.make_contiguous();
        assert_eq!(&all[..50], &[1; 50][..]);
        assert_eq!(&all[50..], &[2; 100][..]);
    }
}
