//! The loop-iteration latency histogram: fixed Prometheus buckets, single writer.
//!
//! The event loop records how long each iteration was busy (from the return of `poll` to the
//! next call to it). Buckets are fixed at compile time so the exposition has bounded cardinality
//! and recording is a short scan over a constant array plus two single-writer stores; no
//! allocation. Counts are stored per bucket (not cumulative) so one observation touches one
//! bucket; the renderer accumulates them into Prometheus' cumulative `le` form.

use std::time::Duration;

use super::counter::Counter;

/// Upper bounds of the finite buckets, in nanoseconds (5 µs .. 1 s). `+Inf` is implicit.
pub const ITERATION_BUCKET_BOUNDS_NS: [u64; 16] = [
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
];

/// Number of buckets including `+Inf`.
pub const ITERATION_BUCKETS: usize = ITERATION_BUCKET_BOUNDS_NS.len() + 1;

/// A latency histogram with the fixed [`ITERATION_BUCKET_BOUNDS_NS`] buckets.
#[derive(Debug, Default)]
pub(crate) struct LatencyHistogram {
    /// Observations per bucket, not cumulative; the last one is `+Inf`.
    buckets: [Counter; ITERATION_BUCKETS],
    /// Sum of all observations in nanoseconds.
    sum_ns: Counter,
}

impl LatencyHistogram {
    /// Records one observation. Only the owning loop thread calls this.
    #[inline]
    pub(crate) fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let index = bucket_index(nanos);
        self.buckets[index].increment();
        self.sum_ns.add(nanos);
    }

    /// Per-bucket (non-cumulative) counts and the sum in nanoseconds.
    pub(crate) fn read(&self) -> ([u64; ITERATION_BUCKETS], u64) {
        let mut counts = [0u64; ITERATION_BUCKETS];
        for (count, bucket) in counts.iter_mut().zip(&self.buckets) {
            *count = bucket.get();
        }
        (counts, self.sum_ns.get())
    }
}

/// The bucket an observation of `nanos` falls in: the first whose bound is >= it
/// (Prometheus buckets are `le`, less than or equal).
#[inline]
fn bucket_index(nanos: u64) -> usize {
    // Loop iterations are short, so a forward scan usually stops in the first few buckets.
    ITERATION_BUCKET_BOUNDS_NS
        .iter()
        .position(|&bound| nanos <= bound)
        .unwrap_or(ITERATION_BUCKET_BOUNDS_NS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_strictly_increasing() {
        assert!(ITERATION_BUCKET_BOUNDS_NS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn observation_on_a_bound_falls_in_that_bucket() {
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(5_000), 0);
        assert_eq!(bucket_index(5_001), 1);
        assert_eq!(bucket_index(1_000_000_000), 15);
        assert_eq!(bucket_index(1_000_000_001), 16);
        assert_eq!(bucket_index(u64::MAX), 16);
    }

    #[test]
    fn observe_counts_and_sums() {
        let histogram = LatencyHistogram::default();
        histogram.observe(Duration::from_micros(3));
        histogram.observe(Duration::from_micros(7));
        histogram.observe(Duration::from_secs(2));
        let (counts, sum) = histogram.read();
        assert_eq!(counts[0], 1);
        assert_eq!(counts[1], 1);
        assert_eq!(counts[16], 1);
        assert_eq!(counts.iter().sum::<u64>(), 3);
        assert_eq!(sum, 3_000 + 7_000 + 2_000_000_000);
    }
}
