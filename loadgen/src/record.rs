//! Recording: what each worker measures, and the merge at the end.
//!
//! Every worker owns a [`Recorder`] (no sharing, no atomics on the hot path). Latencies are
//! nanoseconds in HdrHistograms covering 1 µs to 60 s at 3 significant digits; longer values
//! saturate at 60 s. Besides the whole-run histograms the recorder keeps one-second interval
//! histograms that the worker ships to the main thread as [`IntervalReport`]s (live progress,
//! the `timeseries` and `--hdr-log`). At the end the main thread merges the recorders.
//!
//! Hot path: replies answered by the same read to requests sent by the same write have exactly
//! the same latencies, and the requests of one closed-loop batch the same loop lag. The recorder
//! therefore keeps the last value (pair) with a count and records it with one `record_n` when a
//! different value comes or the histograms are read (`take_interval`, `merge`); `record_n(v, n)`
//! leaves a histogram exactly as `n` times `record(v)` would. At 16 or 64 requests in flight this
//! turns ~3 histogram records per request into a few per read (`benches/hot_path.rs`,
//! `record/reply`). A closed-loop reply's two latencies are equal; it is recorded once, in a
//! histogram added to both interval histograms when the interval is taken.

use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::error_kind::ErrorKind;
use crate::summary::Percentiles;

/// Smallest value told apart: 1 µs.
pub const LOWEST_NS: u64 = 1_000;
/// Largest value recorded: 60 s.
pub const HIGHEST_NS: u64 = 60_000_000_000;
/// Significant digits kept.
pub const SIGFIG: u8 = 3;

/// A histogram with the recording bounds.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy the constructor's rules (low >= 1, high >= 2 * low,
    // sigfig <= 5), so this cannot fail.
    Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Counters of one worker (or, merged, of the run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub sent: u64,
    pub completed: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub opened: u64,
    pub failed: u64,
    pub errors: [u64; ErrorKind::COUNT],
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.sent += other.sent;
        self.completed += other.completed;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.opened += other.opened;
        self.failed += other.failed;
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors.iter()) {
            *mine += theirs;
        }
    }

    pub fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }
}

/// One worker's measurements.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// From intended send time to reply, for every interval already taken (a merged recorder
    /// holds everything).
    pub latency: Histogram<u64>,
    /// From actual send time to reply, likewise.
    pub latency_uncorrected: Histogram<u64>,
    /// Connect (plus handshake).
    pub connect: Histogram<u64>,
    /// How late the worker sent, relative to when it could have (complete once
    /// `take_interval` or `merge` has run: the latest run of equal values is held back).
    pub loop_lag: Histogram<u64>,
    pub counts: Counts,
    interval_latency: Histogram<u64>,
    interval_uncorrected: Histogram<u64>,
    /// Replies whose corrected latency equals the uncorrected one (every closed-loop reply):
    /// recorded once here and added to both interval histograms when the interval is taken.
    interval_same: Histogram<u64>,
    interval_counts: Counts,
    /// Replies not yet in the interval histograms, all with the same latencies.
    reply_run: ReplyRun,
    /// Sends not yet in `loop_lag`, all with the same lag.
    lag_run: LagRun,
}

/// `count` replies with these latencies (ns, corrected already at least uncorrected), not yet
/// recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ReplyRun {
    corrected: u64,
    uncorrected: u64,
    count: u64,
}

/// `count` sends with this loop lag (ns), not yet recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct LagRun {
    lag: u64,
    count: u64,
}

impl ReplyRun {
    fn record_into(&self, latency: &mut Histogram<u64>, uncorrected: &mut Histogram<u64>) {
        if self.count > 0 {
            latency.saturating_record_n(self.corrected, self.count);
            uncorrected.saturating_record_n(self.uncorrected, self.count);
        }
    }

    /// As `record_into`, but a run whose two latencies are equal goes to `same` once.
    fn record_split(
        &self,
        latency: &mut Histogram<u64>,
        uncorrected: &mut Histogram<u64>,
        same: &mut Histogram<u64>,
    ) {
        if self.count > 0 && self.corrected == self.uncorrected {
            same.saturating_record_n(self.corrected, self.count);
        } else {
            self.record_into(latency, uncorrected);
        }
    }
}

impl LagRun {
    fn record_into(&self, loop_lag: &mut Histogram<u64>) {
        if self.count > 0 {
            loop_lag.saturating_record_n(self.lag, self.count);
        }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            latency: new_histogram(),
            latency_uncorrected: new_histogram(),
            connect: new_histogram(),
            loop_lag: new_histogram(),
            counts: Counts::default(),
            interval_latency: new_histogram(),
            interval_uncorrected: new_histogram(),
            interval_same: new_histogram(),
            interval_counts: Counts::default(),
            reply_run: ReplyRun::default(),
            lag_run: LagRun::default(),
        }
    }
}

/// One worker's measurements for one second (the last one may be shorter).
#[derive(Debug, Clone)]
pub struct IntervalReport {
    pub worker: usize,
    /// 0 for the first second of the measured window.
    pub index: u64,
    /// Interval bounds, ns since the measured window began.
    pub start_ns: u64,
    pub end_ns: u64,
    pub latency: Histogram<u64>,
    pub latency_uncorrected: Histogram<u64>,
    pub counts: Counts,
}

impl Recorder {
    /// A reply arrived: `corrected_ns` from its intended time, `uncorrected_ns` from its send.
    ///
    /// Hot path: a comparison with the previous reply; two histogram records (into the interval
    /// histograms only; they are added to the whole-run ones once a second in
    /// [`take_interval`](Self::take_interval)) only when its latencies differ.
    #[inline]
    pub fn reply(&mut self, corrected_ns: u64, uncorrected_ns: u64) {
        self.reply_n(corrected_ns, uncorrected_ns, 1);
    }

    /// `count` replies arrived, all with these latencies.
    #[inline]
    pub fn reply_n(&mut self, corrected_ns: u64, uncorrected_ns: u64, count: u64) {
        let corrected = corrected_ns.max(uncorrected_ns);
        let run = &mut self.reply_run;
        if run.corrected == corrected && run.uncorrected == uncorrected_ns {
            run.count += count;
        } else {
            self.flush_replies();
            self.reply_run = ReplyRun {
                corrected,
                uncorrected: uncorrected_ns,
                count,
            };
        }
        self.counts.completed += count;
        self.interval_counts.completed += count;
    }

    /// Record the held-back replies.
    #[inline(never)]
    fn flush_replies(&mut self) {
        self.reply_run.record_split(
            &mut self.interval_latency,
            &mut self.interval_uncorrected,
            &mut self.interval_same,
        );
        self.reply_run.count = 0;
    }

    #[inline]
    pub fn sent(&mut self, bytes: u64) {
        self.sent_n(1, bytes);
    }

    /// `requests` requests of `bytes` in all were sent.
    #[inline]
    pub fn sent_n(&mut self, requests: u64, bytes: u64) {
        self.counts.sent += requests;
        self.counts.bytes_sent += bytes;
        self.interval_counts.sent += requests;
        self.interval_counts.bytes_sent += bytes;
    }

    #[inline]
    pub fn received_bytes(&mut self, bytes: u64) {
        self.counts.bytes_received += bytes;
        self.interval_counts.bytes_received += bytes;
    }

    /// A request left `lag_ns` after it could have (hot path: held back while equal, as replies).
    #[inline]
    pub fn lag(&mut self, lag_ns: u64) {
        self.lag_n(lag_ns, 1);
    }

    /// `count` requests left `lag_ns` after they could have.
    #[inline]
    pub fn lag_n(&mut self, lag_ns: u64, count: u64) {
        if self.lag_run.lag == lag_ns {
            self.lag_run.count += count;
        } else {
            self.flush_lag();
            self.lag_run = LagRun { lag: lag_ns, count };
        }
    }

    /// Record the held-back lags.
    #[inline(never)]
    fn flush_lag(&mut self) {
        self.lag_run.record_into(&mut self.loop_lag);
        self.lag_run.count = 0;
    }

    pub fn connected(&mut self, connect_ns: u64) {
        self.connect.saturating_record(connect_ns);
        self.counts.opened += 1;
        self.interval_counts.opened += 1;
    }

    pub fn connect_failed(&mut self, kind: ErrorKind) {
        self.counts.failed += 1;
        self.interval_counts.failed += 1;
        self.error(kind);
    }

    pub fn error(&mut self, kind: ErrorKind) {
        self.counts.errors[kind.index()] += 1;
        self.interval_counts.errors[kind.index()] += 1;
    }

    /// Hand out the interval measurements and start a new interval.
    pub fn take_interval(
        &mut self,
        worker: usize,
        index: u64,
        start_ns: u64,
        end_ns: u64,
    ) -> IntervalReport {
        self.flush_replies();
        self.flush_lag();
        // Same bounds everywhere, so adding cannot fail.
        let _ = self.interval_latency.add(&self.interval_same);
        let _ = self.interval_uncorrected.add(&self.interval_same);
        self.interval_same.reset();
        let report = IntervalReport {
            worker,
            index,
            start_ns,
            end_ns,
            latency: self.interval_latency.clone(),
            latency_uncorrected: self.interval_uncorrected.clone(),
            counts: std::mem::take(&mut self.interval_counts),
        };
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&self.interval_latency);
        let _ = self.latency_uncorrected.add(&self.interval_uncorrected);
        self.interval_latency.reset();
        self.interval_uncorrected.reset();
        report
    }

    /// Add another worker's measurements (including its interval not yet taken).
    pub fn merge(&mut self, other: &Recorder) {
        // Histograms built by new_histogram share bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.latency.add(&other.interval_latency);
        let _ = self.latency_uncorrected.add(&other.latency_uncorrected);
        let _ = self.latency_uncorrected.add(&other.interval_uncorrected);
        let _ = self.latency.add(&other.interval_same);
        let _ = self.latency_uncorrected.add(&other.interval_same);
        other
            .reply_run
            .record_into(&mut self.latency, &mut self.latency_uncorrected);
        let _ = self.connect.add(&other.connect);
        let _ = self.loop_lag.add(&other.loop_lag);
        other.lag_run.record_into(&mut self.loop_lag);
        self.counts.add(&other.counts);
    }
}

/// The summary statistics of a nanosecond histogram, in microseconds.
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let us = |ns: u64| ns as f64 / 1000.0;
    Percentiles {
        p50: us(h.value_at_quantile(0.50)),
        p90: us(h.value_at_quantile(0.90)),
        p99: us(h.value_at_quantile(0.99)),
        p999: us(h.value_at_quantile(0.999)),
        max: us(h.max()),
        mean: h.mean() / 1000.0,
        count: h.len(),
    }
}

/// HdrHistogram V2 compressed encoding, base64 (the form HdrHistogram tools exchange).
pub fn encode_base64(h: &Histogram<u64>) -> String {
    use base64::Engine;
    let mut bytes = Vec::new();
    match V2DeflateSerializer::new().serialize(h, &mut bytes) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(bytes),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use hdrhistogram::serialization::Deserializer;

    #[test]
    fn records_and_merges() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        a.reply(2_000_000, 1_000_000);
        b.reply(500_000_000, 1_000_000);
        b.error(ErrorKind::Reset);
        // As the run does: merge every worker into an empty recorder.
        let mut merged = Recorder::default();
        merged.merge(&a);
        merged.merge(&b);
        assert_eq!(merged.counts.completed, 2);
        assert_eq!(merged.counts.errors[ErrorKind::Reset.index()], 1);
        let p = percentiles(&merged.latency);
        assert!((p.max - 500_000.0).abs() / 500_000.0 < 0.001, "{p:?}");
        assert_eq!(p.count, 2);
    }

    #[test]
    fn intervals_reset() {
        let mut r = Recorder::default();
        r.reply(1_000_000, 1_000_000);
        let first = r.take_interval(0, 0, 0, 1_000_000_000);
        assert_eq!(first.counts.completed, 1);
        assert_eq!(first.latency.len(), 1);
        let second = r.take_interval(0, 1, 1_000_000_000, 2_000_000_000);
        assert_eq!(second.counts.completed, 0);
        assert_eq!(second.latency.len(), 0);
        assert_eq!(r.latency.len(), 1);
        r.reply(2_000_000, 1_000_000);
        let mut merged = Recorder::default();
        merged.merge(&r);
        assert_eq!(merged.latency.len(), 2);
        assert_eq!(merged.latency_uncorrected.len(), 2);
    }

    #[test]
    fn saturates_beyond_sixty_seconds() {
        let mut r = Recorder::default();
        r.reply(120_000_000_000, 120_000_000_000);
        let report = r.take_interval(0, 0, 0, 1);
        assert!(report.latency.max() >= HIGHEST_NS - HIGHEST_NS / 1000);
        assert!(r.latency.max() >= HIGHEST_NS - HIGHEST_NS / 1000);
    }

    /// What the recorder must equal: every value recorded on its own, straight away.
    #[derive(Default)]
    struct Reference {
        latency: Vec<u64>,
        uncorrected: Vec<u64>,
        lag: Vec<u64>,
    }

    /// What a histogram holds, comparable and short to print: (value, count) of every recorded
    /// bucket, then total count, min and max as bucket bounds (the crate reports the max of a
    /// histogram holding only zeros as 0 or 511, the top of their bucket, depending on whether
    /// it was reset or added to; an empty one has neither).
    fn contents(h: &Histogram<u64>) -> (Vec<(u64, u64)>, u64, u64, u64) {
        if h.is_empty() {
            return (Vec::new(), 0, 0, 0);
        }
        let buckets = h
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        (
            buckets,
            h.len(),
            h.lowest_equivalent(h.min()),
            h.highest_equivalent(h.max()),
        )
    }

    fn histogram_of(values: &[u64]) -> (Vec<(u64, u64)>, u64, u64, u64) {
        let mut h = new_histogram();
        for &v in values {
            h.saturating_record(v);
        }
        contents(&h)
    }

    proptest::proptest! {
        /// Holding back runs of equal values never changes what the histograms hold once they
        /// are read, whatever the order of replies, lags and interval cuts.
        #[test]
        fn runs_record_exactly_what_single_records_would(
            events in proptest::collection::vec((0u8..4, 0u64..4, 0u64..3), 0..300),
        ) {
            let mut r = Recorder::default();
            let mut reference = Reference::default();
            let mut interval = Reference::default();
            // Few distinct values, so runs form; 0 and a value past 60 s are among them.
            let value = |k: u64| [0, 1_500, 2_000_000, 90_000_000_000][k as usize % 4];
            let mut index = 0;
            for (op, a, b) in events {
                match op {
                    0 => {
                        let (c, u) = (value(a), value(b));
                        r.reply(c, u);
                        interval.latency.push(c.max(u));
                        interval.uncorrected.push(u);
                    }
                    1 => {
                        // A run of replies at once (the raw bulk path), possibly none.
                        let (c, u, n) = (value(a), value(b), (a + b) as usize);
                        r.reply_n(c, u, n as u64);
                        interval.latency.extend(std::iter::repeat_n(c.max(u), n));
                        interval.uncorrected.extend(std::iter::repeat_n(u, n));
                    }
                    2 => {
                        // One send, or a closed-loop batch of `b` (possibly none).
                        if b == 0 {
                            r.lag(value(a));
                            reference.lag.push(value(a));
                        } else {
                            r.lag_n(value(a), b);
                            reference.lag.extend(std::iter::repeat_n(value(a), b as usize));
                        }
                    }
                    _ => {
                        let report = r.take_interval(0, index, 0, 1);
                        index += 1;
                        proptest::prop_assert_eq!(contents(&report.latency), histogram_of(&interval.latency));
                        proptest::prop_assert_eq!(
                            contents(&report.latency_uncorrected),
                            histogram_of(&interval.uncorrected)
                        );
                        proptest::prop_assert_eq!(report.counts.completed, interval.latency.len() as u64);
                        reference.latency.append(&mut interval.latency);
                        reference.uncorrected.append(&mut interval.uncorrected);
                        proptest::prop_assert_eq!(contents(&r.loop_lag), histogram_of(&reference.lag));
                    }
                }
            }
            reference.latency.append(&mut interval.latency);
            reference.uncorrected.append(&mut interval.uncorrected);
            let mut merged = Recorder::default();
            merged.merge(&r);
            proptest::prop_assert_eq!(contents(&merged.latency), histogram_of(&reference.latency));
            proptest::prop_assert_eq!(
                contents(&merged.latency_uncorrected),
                histogram_of(&reference.uncorrected)
            );
            proptest::prop_assert_eq!(contents(&merged.loop_lag), histogram_of(&reference.lag));
            proptest::prop_assert_eq!(merged.counts.completed, reference.latency.len() as u64);
        }
    }

    #[test]
    fn base64_round_trips() {
        let mut h = new_histogram();
        for v in [1_000u64, 50_000, 7_000_000] {
            h.record(v).unwrap();
        }
        let text = encode_base64(&h);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap();
        let back: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .unwrap();
        assert_eq!(back, h);
    }
}
