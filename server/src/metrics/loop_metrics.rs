//! Per-loop metrics: what one event loop records on its hot path.
//!
//! Every event loop owns one `Arc<LoopMetrics>` and is its only writer; the metrics server's
//! scrape thread is its only reader (through [`LoopMetrics::snapshot`]). Recording is a handful
//! of single-writer stores (see `counter.rs` for why no atomic read-modify-write is needed),
//! and the struct is aligned to 128 bytes (two cache lines, the unit the x86 adjacent-line
//! prefetcher pulls in) so that two loops' metrics never share a cache line: a loop's recording
//! never invalidates another core's cache, and contention only happens when a scrape reads.
//!
//! Derived values are computed by the reader, not maintained by the writer: open connections
//! are accepts minus closes, the paused-connection gauge is pauses minus resumes, and the number
//! of loop iterations is the histogram's count. That keeps the writer's work minimal.

use std::time::Duration;

use super::close_kind::CloseKind;
use super::counter::{Counter, Gauge};
use super::histogram::{LatencyHistogram, ITERATION_BUCKETS};

/// The metrics of one event loop. Create one per loop with [`LoopMetrics::new`], share it as
/// `Arc<LoopMetrics>` with the metrics server, and call the `on_*` methods from the loop thread.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use gev::metrics::{CloseKind, LoopMetrics};
///
/// let metrics = Arc::new(LoopMetrics::new(0));
/// metrics.on_accept();
/// metrics.on_read(64);
/// metrics.on_messages_in(1);
/// metrics.on_messages_out(1);
/// metrics.on_write(64);
/// metrics.on_iteration(Duration::from_micros(12));
/// metrics.on_close(CloseKind::Peer);
/// let snapshot = metrics.snapshot();
/// assert_eq!(snapshot.accepts, 1);
/// assert_eq!(snapshot.open_connections(), 0);
/// ```
#[derive(Debug)]
#[repr(align(128))]
pub struct LoopMetrics {
    loop_index: usize,
    accepts: Counter,
    closes: [Counter; CloseKind::COUNT],
    bytes_read: Counter,
    bytes_written: Counter,
    read_syscalls: Counter,
    write_syscalls: Counter,
    messages_in: Counter,
    messages_out: Counter,
    task_queue_depth: Gauge,
    pauses: Counter,
    resumes: Counter,
    tls_handshakes: Counter,
    tls_resumed: Counter,
    iteration_latency: LatencyHistogram,
    /// The loop's UDP counters, when it serves UDP (set once, before the loop runs; the UDP
    /// port is their single writer).
    udp: std::sync::OnceLock<std::sync::Arc<crate::udp::UdpStats>>,
}

impl LoopMetrics {
    /// Metrics for the loop numbered `loop_index` (the `loop` label; `gev-loop-N` thread).
    pub fn new(loop_index: usize) -> Self {
        LoopMetrics {
            loop_index,
            accepts: Counter::default(),
            closes: Default::default(),
            bytes_read: Counter::default(),
            bytes_written: Counter::default(),
            read_syscalls: Counter::default(),
            write_syscalls: Counter::default(),
            messages_in: Counter::default(),
            messages_out: Counter::default(),
            task_queue_depth: Gauge::default(),
            pauses: Counter::default(),
            resumes: Counter::default(),
            tls_handshakes: Counter::default(),
            tls_resumed: Counter::default(),
            iteration_latency: LatencyHistogram::default(),
            udp: std::sync::OnceLock::new(),
        }
    }

    /// The `loop` label of these metrics.
    pub fn loop_index(&self) -> usize {
        self.loop_index
    }

    /// A connection was registered on this loop.
    #[inline]
    pub fn on_accept(&self) {
        self.accepts.increment();
    }

    /// A connection registered on this loop was closed (exactly once per accepted connection).
    #[inline]
    pub fn on_close(&self, reason: impl Into<CloseKind>) {
        self.closes[reason.into().index()].increment();
    }

    /// One read syscall returned; `bytes` is what it read (0 for end of stream or
    /// `WouldBlock`). Counts the syscall and the bytes.
    #[inline]
    pub fn on_read(&self, bytes: usize) {
        self.read_syscalls.increment();
        self.bytes_read.add(bytes as u64);
    }

    /// One write syscall returned; `bytes` is what it wrote (0 for `WouldBlock`).
    #[inline]
    pub fn on_write(&self, bytes: usize) {
        self.write_syscalls.increment();
        self.bytes_written.add(bytes as u64);
    }

    /// `n` messages were unpacked and handed to the handler.
    #[inline]
    pub fn on_messages_in(&self, n: usize) {
        self.messages_in.add(n as u64);
    }

    /// `n` replies were packed into output buffers.
    #[inline]
    pub fn on_messages_out(&self, n: usize) {
        self.messages_out.add(n as u64);
    }

    /// One loop iteration finished; `busy` is the time from `poll` returning to the end of the
    /// iteration's work (not the time spent waiting in `poll`).
    #[inline]
    pub fn on_iteration(&self, busy: Duration) {
        self.iteration_latency.observe(busy);
    }

    /// The number of tasks found in this loop's cross-thread queue when the loop drained it
    /// (set at each drain; it keeps that value until the next drain).
    #[inline]
    pub fn set_task_queue_depth(&self, depth: usize) {
        self.task_queue_depth.set(depth as u64);
    }

    /// A connection stopped being read because its output is above the high watermark.
    #[inline]
    pub fn on_pause(&self) {
        self.pauses.increment();
    }

    /// A paused connection is no longer paused: its output drained below the low watermark,
    /// or it was closed while paused (call `on_resume` before `on_close` then, so the
    /// paused-connections gauge does not count closed connections).
    #[inline]
    pub fn on_resume(&self) {
        self.resumes.increment();
    }

    /// A TLS handshake completed on this loop; `resumed`: it resumed an earlier session
    /// (ticket or session id) instead of a full handshake.
    #[inline]
    pub fn on_tls_handshake(&self, resumed: bool) {
        self.tls_handshakes.increment();
        if resumed {
            self.tls_resumed.increment();
        }
    }

    /// Exports the loop's UDP counters with these metrics (`gev_udp_*`); a second call is
    /// ignored (one UDP socket per loop).
    pub(crate) fn attach_udp(&self, stats: std::sync::Arc<crate::udp::UdpStats>) {
        let _ = self.udp.set(stats);
    }

    /// The loop's UDP counters now, when it serves UDP.
    pub fn udp_snapshot(&self) -> Option<crate::udp::UdpCounters> {
        self.udp.get().map(|stats| stats.snapshot())
    }

    /// A consistent-enough copy of every value, for rendering. Each value is exact; values are
    /// read one after another while the loop keeps recording, so two related values may be one
    /// event apart (derived gauges saturate at zero instead of going negative).
    pub fn snapshot(&self) -> LoopSnapshot {
        // Read each "minus" side before its "plus" side: the writer always records the plus
        // side first (accept before close, pause before resume), so this order keeps derived
        // gauges from dipping below their true value in the common case.
        let mut closes = [0u64; CloseKind::COUNT];
        for (value, counter) in closes.iter_mut().zip(&self.closes) {
            *value = counter.get();
        }
        let resumes = self.resumes.get();
        let (iteration_buckets, iteration_sum_ns) = self.iteration_latency.read();
        LoopSnapshot {
            loop_index: self.loop_index,
            accepts: self.accepts.get(),
            closes,
            bytes_read: self.bytes_read.get(),
            bytes_written: self.bytes_written.get(),
            read_syscalls: self.read_syscalls.get(),
            write_syscalls: self.write_syscalls.get(),
            messages_in: self.messages_in.get(),
            messages_out: self.messages_out.get(),
            task_queue_depth: self.task_queue_depth.get(),
            pauses: self.pauses.get(),
            resumes,
            tls_handshakes: self.tls_handshakes.get(),
            tls_resumed: self.tls_resumed.get(),
            iteration_buckets,
            iteration_sum_ns,
        }
    }
}

/// Plain values of one loop's metrics at one moment (what the renderer turns into text).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoopSnapshot {
    /// The `loop` label.
    pub loop_index: usize,
    /// Connections registered on the loop since start.
    pub accepts: u64,
    /// Connections closed, indexed by [`CloseKind::index`] (order of [`CloseKind::ALL`]).
    pub closes: [u64; CloseKind::COUNT],
    /// Bytes returned by read syscalls.
    pub bytes_read: u64,
    /// Bytes accepted by write syscalls.
    pub bytes_written: u64,
    /// Read syscalls made.
    pub read_syscalls: u64,
    /// Write syscalls made.
    pub write_syscalls: u64,
    /// Messages unpacked and handed to the handler.
    pub messages_in: u64,
    /// Replies packed.
    pub messages_out: u64,
    /// Tasks found in the loop's queue at its last drain.
    pub task_queue_depth: u64,
    /// Times a connection was paused by backpressure.
    pub pauses: u64,
    /// Times a paused connection was resumed (or closed while paused).
    pub resumes: u64,
    /// TLS handshakes completed.
    pub tls_handshakes: u64,
    /// Of those, resumed ones (ticket or session id).
    pub tls_resumed: u64,
    /// Loop iterations per latency bucket, not cumulative; the last is `+Inf`.
    pub iteration_buckets: [u64; ITERATION_BUCKETS],
    /// Total busy time of all iterations, in nanoseconds.
    pub iteration_sum_ns: u64,
}

impl LoopSnapshot {
    /// Closes of one kind.
    pub fn closes_of(&self, kind: CloseKind) -> u64 {
        self.closes[kind.index()]
    }

    /// Connections currently open on the loop (accepts minus closes).
    pub fn open_connections(&self) -> u64 {
        self.accepts
            .saturating_sub(self.closes.iter().copied().sum::<u64>())
    }

    /// Connections currently paused by backpressure (pauses minus resumes).
    pub fn paused_connections(&self) -> u64 {
        self.pauses.saturating_sub(self.resumes)
    }

    /// Loop iterations (the histogram's count).
    pub fn iterations(&self) -> u64 {
        self.iteration_buckets.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn aligned_to_two_cache_lines() {
        assert_eq!(std::mem::align_of::<LoopMetrics>(), 128);
        assert_eq!(std::mem::size_of::<LoopMetrics>() % 128, 0);
    }

    #[test]
    fn records_every_event() {
        let metrics = LoopMetrics::new(3);
        metrics.on_accept();
        metrics.on_accept();
        metrics.on_read(100);
        metrics.on_read(0);
        metrics.on_write(40);
        metrics.on_messages_in(2);
        metrics.on_messages_out(1);
        metrics.on_pause();
        metrics.set_task_queue_depth(9);
        metrics.on_iteration(Duration::from_micros(20));
        metrics.on_close(CloseKind::Idle);
        let s = metrics.snapshot();
        assert_eq!(s.loop_index, 3);
        assert_eq!(s.accepts, 2);
        assert_eq!(s.closes_of(CloseKind::Idle), 1);
        assert_eq!(s.open_connections(), 1);
        assert_eq!((s.bytes_read, s.read_syscalls), (100, 2));
        assert_eq!((s.bytes_written, s.write_syscalls), (40, 1));
        assert_eq!((s.messages_in, s.messages_out), (2, 1));
        assert_eq!(s.paused_connections(), 1);
        assert_eq!(s.task_queue_depth, 9);
        assert_eq!(s.iterations(), 1);
        assert_eq!(s.iteration_sum_ns, 20_000);
        metrics.on_resume();
        assert_eq!(metrics.snapshot().paused_connections(), 0);
    }

    /// One recording call, as the event loop would make it.
    #[derive(Debug, Clone)]
    enum Event {
        Accept,
        Close(usize),
        Read(usize),
        Write(usize),
        MessagesIn(usize),
        MessagesOut(usize),
        Iteration(u64),
        QueueDepth(usize),
        Pause,
        Resume,
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            Just(Event::Accept),
            (0..CloseKind::COUNT).prop_map(Event::Close),
            (0usize..1 << 20).prop_map(Event::Read),
            (0usize..1 << 20).prop_map(Event::Write),
            (0usize..64).prop_map(Event::MessagesIn),
            (0usize..64).prop_map(Event::MessagesOut),
            (0u64..3_000_000_000).prop_map(Event::Iteration),
            (0usize..1000).prop_map(Event::QueueDepth),
            Just(Event::Pause),
            Just(Event::Resume),
        ]
    }

    fn apply(metrics: &LoopMetrics, event: &Event) {
        match *event {
            Event::Accept => metrics.on_accept(),
            Event::Close(kind) => metrics.on_close(CloseKind::ALL[kind]),
            Event::Read(n) => metrics.on_read(n),
            Event::Write(n) => metrics.on_write(n),
            Event::MessagesIn(n) => metrics.on_messages_in(n),
            Event::MessagesOut(n) => metrics.on_messages_out(n),
            Event::Iteration(ns) => metrics.on_iteration(Duration::from_nanos(ns)),
            Event::QueueDepth(n) => metrics.set_task_queue_depth(n),
            Event::Pause => metrics.on_pause(),
            Event::Resume => metrics.on_resume(),
        }
    }

    /// Every counter of `later` is >= the same counter of `earlier`.
    fn counters_not_backwards(earlier: &LoopSnapshot, later: &LoopSnapshot) -> bool {
        let pairs = [
            (earlier.accepts, later.accepts),
            (earlier.bytes_read, later.bytes_read),
            (earlier.bytes_written, later.bytes_written),
            (earlier.read_syscalls, later.read_syscalls),
            (earlier.write_syscalls, later.write_syscalls),
            (earlier.messages_in, later.messages_in),
            (earlier.messages_out, later.messages_out),
            (earlier.pauses, later.pauses),
            (earlier.resumes, later.resumes),
            (earlier.iteration_sum_ns, later.iteration_sum_ns),
            (earlier.iterations(), later.iterations()),
        ];
        pairs.iter().all(|(a, b)| a <= b)
            && earlier
                .closes
                .iter()
                .zip(&later.closes)
                .all(|(a, b)| a <= b)
            && earlier
                .iteration_buckets
                .iter()
                .zip(&later.iteration_buckets)
                .all(|(a, b)| a <= b)
    }

    proptest! {
        #[test]
        fn counters_never_go_backwards(events in proptest::collection::vec(event(), 0..300)) {
            let metrics = LoopMetrics::new(0);
            let mut previous = metrics.snapshot();
            for event in &events {
                apply(&metrics, event);
                let now = metrics.snapshot();
                prop_assert!(counters_not_backwards(&previous, &now), "{previous:?} -> {now:?} after {event:?}");
                previous = now;
            }
        }

        #[test]
        fn snapshot_totals_match_events(events in proptest::collection::vec(event(), 0..300)) {
            let metrics = LoopMetrics::new(0);
            for event in &events {
                apply(&metrics, event);
            }
            let s = metrics.snapshot();
            let count = |f: fn(&Event) -> Option<u64>| events.iter().filter_map(f).sum::<u64>();
            prop_assert_eq!(s.accepts, count(|e| matches!(e, Event::Accept).then_some(1)));
            prop_assert_eq!(s.bytes_read, count(|e| if let Event::Read(n) = e { Some(*n as u64) } else { None }));
            prop_assert_eq!(s.read_syscalls, count(|e| matches!(e, Event::Read(_)).then_some(1)));
            prop_assert_eq!(s.bytes_written, count(|e| if let Event::Write(n) = e { Some(*n as u64) } else { None }));
            prop_assert_eq!(s.messages_in, count(|e| if let Event::MessagesIn(n) = e { Some(*n as u64) } else { None }));
            prop_assert_eq!(s.messages_out, count(|e| if let Event::MessagesOut(n) = e { Some(*n as u64) } else { None }));
            prop_assert_eq!(s.iterations(), count(|e| matches!(e, Event::Iteration(_)).then_some(1)));
            prop_assert_eq!(s.iteration_sum_ns, count(|e| if let Event::Iteration(n) = e { Some(*n) } else { None }));
            for kind in CloseKind::ALL {
                let expected = events.iter().filter(|e| matches!(e, Event::Close(k) if CloseKind::ALL[*k] == kind)).count() as u64;
                prop_assert_eq!(s.closes_of(kind), expected);
            }
        }
    }

    #[test]
    fn concurrent_scrapes_never_see_counters_go_backwards() {
        let metrics = std::sync::Arc::new(LoopMetrics::new(0));
        let writer = {
            let metrics = std::sync::Arc::clone(&metrics);
            std::thread::spawn(move || {
                for i in 0..100_000u64 {
                    metrics.on_accept();
                    metrics.on_read(64);
                    metrics.on_write(64);
                    metrics.on_messages_in(1);
                    metrics.on_iteration(Duration::from_nanos(i * 37 % 2_000_000));
                    metrics.on_close(CloseKind::ALL[(i % 8) as usize]);
                }
            })
        };
        let mut previous = metrics.snapshot();
        while !writer.is_finished() {
            let now = metrics.snapshot();
            assert!(
                counters_not_backwards(&previous, &now),
                "{previous:?} -> {now:?}"
            );
            previous = now;
        }
        writer.join().expect("writer thread panicked");
        let last = metrics.snapshot();
        assert_eq!(last.accepts, 100_000);
        assert_eq!(last.bytes_read, 6_400_000);
        assert_eq!(last.open_connections(), 0);
    }
}
