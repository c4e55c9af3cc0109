//! Single-writer counters: the cells every per-loop metric is made of.
//!
//! Each event loop owns its [`LoopMetrics`](super::LoopMetrics) and is the only thread that
//! writes to it; the scrape thread only reads. With one writer, an increment does not need an
//! atomic read-modify-write (`lock xadd` on x86, an LL/SC loop on ARM): a relaxed `load`
//! followed by a relaxed `store` of the new value compiles to a plain `mov`/`add`/`mov` and never
//! takes the cache line exclusively from another core except when a scrape has just read it.
//!
//! Why this is sound: the cell is still an `AtomicU64`, so a concurrent reader never sees a torn
//! value and there is no data race in the Rust memory-model sense. Every value a reader can
//! observe is one the writer stored, and since the writer only ever stores a larger value
//! (modulo `u64` wrap-around, which at 10^9 increments per second takes 584 years), the values a
//! reader observes never go backwards (read-read coherence of a single atomic location). If the
//! single-writer rule were broken (two threads calling the same `LoopMetrics` method at once),
//! the only consequence is a lost increment, never undefined behaviour.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count, written by one thread, read by any.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning loop thread calls this (see the module docs).
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        // Load + store instead of fetch_add: single writer, so no increment can be lost, and it
        // avoids a locked read-modify-write on the event loop's hot path.
        let current = self.0.load(Ordering::Relaxed);
        self.0.store(current.wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub(crate) fn increment(&self) {
        self.add(1);
    }

    /// The current value, from any thread.
    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (a gauge), written by one thread, read by any.
#[derive(Debug, Default)]
pub(crate) struct Gauge(AtomicU64);

impl Gauge {
    /// Replaces the value. Only the owning loop thread calls this.
    #[inline]
    pub(crate) fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// The current value, from any thread.
    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counter_adds_and_increments() {
        let counter = Counter::default();
        counter.add(5);
        counter.increment();
        assert_eq!(counter.get(), 6);
    }

    #[test]
    fn gauge_holds_last_value() {
        let gauge = Gauge::default();
        gauge.set(7);
        gauge.set(3);
        assert_eq!(gauge.get(), 3);
    }

    #[test]
    fn concurrent_reader_sees_monotonic_values_and_final_total() {
        let counter = Arc::new(Counter::default());
        let writer = {
            let counter = Arc::clone(&counter);
            std::thread::spawn(move || {
                for _ in 0..200_000 {
                    counter.increment();
                }
            })
        };
        let mut last = 0;
        while !writer.is_finished() {
            let now = counter.get();
            assert!(now >= last, "counter went backwards: {last} -> {now}");
            last = now;
        }
        writer.join().expect("writer thread panicked");
        assert_eq!(counter.get(), 200_000);
    }
}
