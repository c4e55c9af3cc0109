//! One run from start to summary: check the target answers, start the workers, collect their
//! one-second reports (live progress, timeseries, `--hdr-log`), merge their recorders and build
//! the [`Summary`] with its warnings. The binary only parses arguments and prints.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::config::Config;
use crate::error_kind::ErrorKind;
use crate::hdr_log::HdrLogFile;
use crate::monitor::Monitor;
use crate::payload::Payloads;
use crate::record::{self, Counts, IntervalReport, Recorder};
use crate::schedule::Schedule;
use crate::summary::{self, Summary, TimePoint};
use crate::worker::{self, Shared, WorkerPlan, WorkerResult};

/// A worker above this CPU share (percent of one core) may have limited the run.
pub const BUSY_CPU_PERCENT: f64 = 90.0;
/// Loop lag p99 above this (µs) means the generator sent late.
pub const LATE_LAG_P99_US: f64 = 1000.0;
/// An open-loop run that achieves less than this fraction of `-R` is reported as falling short.
pub const SHORTFALL_FRACTION: f64 = 0.98;
/// Final partial intervals shorter than this are left out of the timeseries (too short for a rate).
const MIN_INTERVAL_NS: u64 = 100_000_000;

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot connect to {target} ({addr}): {source}; start the server or fix TARGET")]
    Unreachable {
        target: String,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write --hdr-log {path}: {source}")]
    HdrLog {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start worker thread: {0}")]
    Spawn(std::io::Error),
    #[error("worker {worker} failed: {source}")]
    Worker {
        worker: usize,
        source: std::io::Error,
    },
    #[error("worker {0} panicked")]
    Panicked(usize),
}

/// Check once, before any worker starts, that the target accepts a connection, and settle on
/// the first resolved address that does (`localhost` may resolve to `::1` while the server
/// listens on 127.0.0.1 only).
pub fn probe(config: &mut Config) -> Result<(), RunError> {
    if config.target.transport == crate::target::Transport::Udp {
        // Nothing to connect to: a missing server shows as lost datagrams.
        return Ok(());
    }
    if let crate::target::Transport::Unix(path) = &config.target.transport {
        return crate::unix::probe(path).map_err(|source| RunError::Unreachable {
            target: config.target_text.clone(),
            addr: config.addr,
            source,
        });
    }
    let timeout = config.timeout.min(Duration::from_secs(3));
    let mut first_error = None;
    for &addr in &config.candidates {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => {
                config.addr = addr;
                return Ok(());
            }
            Err(e) => {
                first_error.get_or_insert((addr, e));
            }
        }
    }
    let (addr, source) = first_error.unwrap_or_else(|| {
        (
            config.addr,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no address to try"),
        )
    });
    Err(RunError::Unreachable {
        target: config.target_text.clone(),
        addr,
        source,
    })
}

/// One merged second.
struct Interval {
    reports: usize,
    start_ns: u64,
    end_ns: u64,
    latency: Histogram<u64>,
    uncorrected: Histogram<u64>,
    counts: Counts,
}

/// Run the load described by `config` until its end (or until `stop` is set) and summarise.
pub fn run(
    config: Config,
    stop: Arc<AtomicBool>,
    show_progress: bool,
) -> Result<Summary, RunError> {
    if config.target.transport == crate::target::Transport::Udp {
        return crate::udp::run(config, stop);
    }
    let mut rng = SmallRng::seed_from_u64(0x10ad_9e11);
    let payloads = Payloads::new(&config.payload, &mut rng);
    // Misbehaving connections (`--misbehave`) are not the workers': the rate is spread over the
    // well-behaved ones only.
    let connections = config.well_behaved_connections();
    let schedule = Schedule::new(config.rate, connections, config.pipeline);
    let late_start = config
        .start_at
        .and_then(|start_at| wait_until(start_at, &stop));
    let origin = Instant::now();
    let wall_origin = SystemTime::now();
    let measure_start = config.warmup.as_nanos() as u64;
    let end = config.duration.map(|d| measure_start + d.as_nanos() as u64);
    let threads = config.threads.min(connections);
    let quotas_for = |first: usize, count: usize| {
        config.requests.map(|n| {
            (first..first + count)
                .map(|i| n / connections as u64 + u64::from((i as u64) < n % connections as u64))
                .collect::<Vec<u64>>()
        })
    };
    let cores = if config.pin {
        core_affinity::get_core_ids()
    } else {
        None
    };
    let mut plans = Vec::with_capacity(threads);
    let mut first = 0;
    for id in 0..threads {
        let count = connections / threads + usize::from(id < connections % threads);
        plans.push(WorkerPlan {
            id,
            first_index: first,
            connections: count,
            quotas: quotas_for(first, count),
            core: cores.as_ref().and_then(|c| c.get(id % c.len()).copied()),
        });
        first += count;
    }
    let mut hdr_file = match &config.hdr_log {
        Some(path) => Some(HdrLogFile::create(path).map_err(|source| RunError::HdrLog {
            path: path.display().to_string(),
            source,
        })?),
        None => None,
    };
    let hdr_path = config
        .hdr_log
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let monitor = Monitor::new(config.duration.map(|d| d.as_secs_f64()), show_progress);
    let shared = Arc::new(Shared {
        config,
        payloads,
        schedule,
        origin,
        measure_start,
        end,
        stop,
    });

    let misbehave_done = Arc::new(AtomicBool::new(false));
    let driver = match &shared.config.misbehave {
        Some(plan) => {
            let driver = crate::misbehave::driver::Driver::new(
                &plan.mix,
                &plan.counts,
                Arc::clone(&shared),
                Arc::clone(&misbehave_done),
            )
            .map_err(RunError::Spawn)?;
            Some(
                std::thread::Builder::new()
                    .name("loadgen-misbehave".into())
                    .spawn(move || driver.run())
                    .map_err(RunError::Spawn)?,
            )
        }
        None => None,
    };

    let (tx, rx) = mpsc::channel::<IntervalReport>();
    let mut handles = Vec::with_capacity(threads);
    for plan in plans {
        let shared = Arc::clone(&shared);
        let tx = tx.clone();
        let id = plan.id;
        let handle = std::thread::Builder::new()
            .name(format!("loadgen-{id}"))
            .spawn(move || worker::run_worker(plan, shared, tx))
            .map_err(RunError::Spawn)?;
        handles.push(handle);
    }
    drop(tx);

    // Collect the one-second reports while the workers run.
    let mut log = match hdr_file.as_mut() {
        Some(file) => Some(
            file.begin(wall_origin + Duration::from_nanos(measure_start))
                .map_err(|source| RunError::HdrLog {
                    path: hdr_path.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    let mut pending: BTreeMap<u64, Interval> = BTreeMap::new();
    let mut timeseries = Vec::new();
    let mut totals = Counts::default();
    let mut log_error = None;
    let mut emit = |interval: Interval, timeseries: &mut Vec<TimePoint>, totals: &mut Counts| {
        totals.add(&interval.counts);
        let length = interval.end_ns.saturating_sub(interval.start_ns);
        if let Some(log) = log.as_mut() {
            if let Err(e) = log.write(
                Duration::from_nanos(interval.start_ns),
                Duration::from_nanos(length),
                &interval.latency,
                &interval.uncorrected,
            ) {
                log_error.get_or_insert(e);
            }
        }
        if length < MIN_INTERVAL_NS {
            return;
        }
        let point = TimePoint {
            t: interval.end_ns as f64 / 1e9,
            rps: interval.counts.completed as f64 / (length as f64 / 1e9),
            p99_us: record::percentiles(&interval.latency).p99,
        };
        monitor.update(&point, totals.completed, totals.total_errors());
        timeseries.push(point);
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(report) => {
                let entry = pending.entry(report.index).or_insert_with(|| Interval {
                    reports: 0,
                    start_ns: report.start_ns,
                    end_ns: 0,
                    latency: record::new_histogram(),
                    uncorrected: record::new_histogram(),
                    counts: Counts::default(),
                });
                entry.reports += 1;
                entry.end_ns = entry.end_ns.max(report.end_ns);
                let _ = entry.latency.add(&report.latency);
                let _ = entry.uncorrected.add(&report.latency_uncorrected);
                entry.counts.add(&report.counts);
                while pending
                    .first_key_value()
                    .is_some_and(|(_, i)| i.reports >= threads)
                {
                    if let Some((_, interval)) = pending.pop_first() {
                        emit(interval, &mut timeseries, &mut totals);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    while let Some((_, interval)) = pending.pop_first() {
        emit(interval, &mut timeseries, &mut totals);
    }
    drop(log);
    if let Some(file) = hdr_file {
        file.finish().map_err(|source| RunError::HdrLog {
            path: hdr_path.clone(),
            source,
        })?;
    }
    if let Some(source) = log_error {
        return Err(RunError::HdrLog {
            path: hdr_path,
            source,
        });
    }
    monitor.finish();

    let mut results = Vec::with_capacity(threads);
    for (id, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(Ok(result)) => results.push(result),
            Ok(Err(source)) => return Err(RunError::Worker { worker: id, source }),
            Err(_) => return Err(RunError::Panicked(id)),
        }
    }
    // A count-bounded run ends with its well-behaved requests; a timed one at the window's end.
    if shared.config.requests.is_some() {
        misbehave_done.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let misbehaving = match driver {
        Some(handle) => match handle.join() {
            Ok(Ok(figures)) => Some(figures),
            Ok(Err(source)) => {
                return Err(RunError::Worker {
                    worker: threads,
                    source,
                })
            }
            Err(_) => return Err(RunError::Panicked(threads)),
        },
        None => None,
    };
    let mut summary = summarize(&shared, &results, timeseries);
    summary.misbehaving = misbehaving;
    summary.window_start_unix_ns = (wall_origin + Duration::from_nanos(measure_start))
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|since| since.as_nanos() as u64);
    if let Some(late) = late_start.filter(|late| *late > LATE_START_WARNING) {
        summary.warnings.push(format!(
            "started {:.1} ms after --start-at (the instant had passed when loadgen was ready)",
            late.as_secs_f64() * 1e3
        ));
    }
    Ok(summary)
}

/// A start later than this after `--start-at` is worth a warning: the hosts of a multi-host run
/// did not start together.
const LATE_START_WARNING: Duration = Duration::from_millis(10);

/// Sleeps until the wall clock reaches `start_at` (ns since the Unix epoch) or `stop` is set;
/// returns how late it already was when the instant had passed before the wait began, `None`
/// when there was something to wait for.
fn wait_until(start_at: u64, stop: &AtomicBool) -> Option<Duration> {
    let target = SystemTime::UNIX_EPOCH + Duration::from_nanos(start_at);
    if let Err(past) = target.duration_since(SystemTime::now()) {
        return Some(past.duration());
    }
    // Short slices, so SIGINT during the wait still ends the run promptly.
    while let Ok(left) = target.duration_since(SystemTime::now()) {
        if left.is_zero() || stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
    None
}

/// What the self-check looks at.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// CPU share of each worker thread, percent of one core.
    pub cpu_percent: &'a [f64],
    pub loop_lag: &'a crate::summary::Percentiles,
    pub rps: f64,
    pub target_rate: Option<f64>,
    pub connections: u64,
    pub opened: u64,
    pub requests: Option<u64>,
    pub completed: u64,
}

/// The caveats a summary carries: a generator that was the bottleneck (busy threads, or late
/// sends), an open-loop rate that fell short, connections or requests that never happened.
pub fn warnings(o: &Observed<'_>) -> Vec<String> {
    let mut warnings = Vec::new();
    let busiest = o.cpu_percent.iter().copied().fold(0.0, f64::max);
    for (i, &busy) in o.cpu_percent.iter().enumerate() {
        if busy >= BUSY_CPU_PERCENT {
            warnings.push(format!(
                "generator thread {i} was busy {busy:.0}% of the measured time: the figures may measure the generator, not the server (add --threads or give loadgen its own cores)"
            ));
        }
    }
    if o.loop_lag.count > 0 && o.loop_lag.p99 > LATE_LAG_P99_US {
        let lag = format!(
            "loop lag p99 {}, max {}",
            crate::printer::format_us(o.loop_lag.p99),
            crate::printer::format_us(o.loop_lag.max)
        );
        if busiest >= BUSY_CPU_PERCENT {
            warnings.push(format!(
                "the generator sent late ({lag}): the figures may measure the generator, not the server"
            ));
        } else {
            warnings.push(format!(
                "the generator sent late ({lag}) although its busiest thread used only {busiest:.0}% of a core: other processes are competing for its cores, so the figures are noisy"
            ));
        }
    }
    if let Some(target) = o.target_rate {
        if o.rps < target * SHORTFALL_FRACTION {
            warnings.push(format!(
                "achieved rate fell short of the target: {:.0} req/s is {:.1}% of -R {target:.0}; the server (or the connection count / --pipeline) could not keep up",
                o.rps,
                100.0 * o.rps / target
            ));
        }
    }
    if o.opened < o.connections {
        warnings.push(format!(
            "only {} of the {} connections requested were opened",
            o.opened, o.connections
        ));
    }
    if let Some(n) = o.requests {
        if o.completed < n {
            warnings.push(format!(
                "only {} of the {n} requests requested completed",
                o.completed
            ));
        }
    }
    warnings
}

/// Merge the workers' results into the summary and decide on warnings.
fn summarize(shared: &Shared, results: &[WorkerResult], timeseries: Vec<TimePoint>) -> Summary {
    let config = &shared.config;
    let mut merged = Recorder::default();
    let mut tls = crate::tls::TlsRecorder::default();
    for result in results {
        merged.merge(&result.recorder);
        tls.merge(&result.tls);
    }
    // With every connection misbehaving there are no workers: the window is the run's.
    let finished = results
        .iter()
        .map(|r| r.finished_ns)
        .max()
        .unwrap_or_else(|| shared.end.map_or(shared.now(), |end| shared.now().min(end)));
    let duration_ns = finished.saturating_sub(shared.measure_start).max(1);
    let duration_secs = duration_ns as f64 / 1e9;
    let counts = &merged.counts;
    let rps = counts.completed as f64 / duration_secs;
    let latency = record::percentiles(&merged.latency);
    let loop_lag = record::percentiles(&merged.loop_lag);
    let cpu: Vec<f64> = results.iter().map(|r| r.cpu_percent).collect();

    let warnings = warnings(&Observed {
        cpu_percent: &cpu,
        loop_lag: &loop_lag,
        rps,
        target_rate: config.rate,
        connections: config.well_behaved_connections() as u64,
        opened: counts.opened,
        requests: config.requests,
        completed: counts.completed,
    });

    let mut warnings = warnings;
    let tls_summary = config.tls.as_ref().map(|settings| {
        let failed: u64 = ErrorKind::ALL
            .iter()
            .filter(|k| k.is_tls())
            .map(|k| counts.errors[k.index()])
            .sum();
        if failed > 0 && tls.handshakes == 0 {
            warnings.push(format!(
                "every TLS handshake failed ({failed}): see the tls_* errors; a certificate error needs --ca with the server's CA, the right --sni, or --insecure"
            ));
        }
        let per_sec = config.handshake_only().then_some(rps);
        tls.summary(&settings.options, failed, per_sec)
    });

    let mut errors = BTreeMap::new();
    for kind in ErrorKind::ALL {
        let n = counts.errors[kind.index()];
        if n > 0 {
            errors.insert(kind.as_str().to_string(), n);
        }
    }
    let histograms = BTreeMap::from([
        (
            "latency".to_string(),
            record::encode_base64(&merged.latency),
        ),
        (
            "latency_uncorrected".to_string(),
            record::encode_base64(&merged.latency_uncorrected),
        ),
        (
            "connect".to_string(),
            record::encode_base64(&merged.connect),
        ),
        (
            "loop_lag".to_string(),
            record::encode_base64(&merged.loop_lag),
        ),
    ]);
    let mut histograms = histograms;
    if config.tls.is_some() {
        histograms.insert(
            "tls_handshake".to_string(),
            record::encode_base64(&tls.handshake),
        );
    }
    Summary {
        schema: summary::SCHEMA.to_string(),
        config: config.run_config(),
        env: crate::env::detect(),
        connections: summary::Connections {
            opened: counts.opened,
            failed: counts.failed,
        },
        requests: summary::Requests {
            sent: counts.sent,
            completed: counts.completed,
            errors,
        },
        throughput: summary::Throughput {
            rps,
            bytes_per_sec: counts.bytes_received as f64 / duration_secs,
            bytes_sent: counts.bytes_sent,
            bytes_received: counts.bytes_received,
        },
        target_rate: config.rate,
        latency_us: latency,
        latency_uncorrected_us: record::percentiles(&merged.latency_uncorrected),
        connect_us: record::percentiles(&merged.connect),
        loop_lag_us: loop_lag,
        histograms,
        timeseries,
        warnings,
        duration_secs,
        generator_cpu_percent: cpu,
        misbehaving: None,
        window_start_unix_ns: None,
        tls: tls_summary,
        datagrams: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_for_a_start_instant() {
        let stop = AtomicBool::new(false);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        // An instant 2 s past: no wait, and the lateness is reported.
        let late = wait_until((now - Duration::from_secs(2)).as_nanos() as u64, &stop);
        assert!(late.is_some_and(|late| late >= Duration::from_secs(2)));
        // An instant 150 ms ahead: waits until then (never earlier), not late.
        let target = now + Duration::from_millis(150);
        assert_eq!(wait_until(target.as_nanos() as u64, &stop), None);
        let after = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        assert!(after >= target);
        // A stop request ends a wait for an instant an hour ahead.
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let started = Instant::now();
        assert_eq!(
            wait_until((now + Duration::from_secs(3600)).as_nanos() as u64, &stop),
            None
        );
        assert!(started.elapsed() < Duration::from_secs(60));
    }
    use crate::summary::Percentiles;

    fn observed<'a>(cpu: &'a [f64], lag: &'a Percentiles) -> Observed<'a> {
        Observed {
            cpu_percent: cpu,
            loop_lag: lag,
            rps: 1000.0,
            target_rate: None,
            connections: 10,
            opened: 10,
            requests: None,
            completed: 10_000,
        }
    }

    fn lag(p99: f64) -> Percentiles {
        Percentiles {
            p99,
            max: p99,
            count: 100,
            ..Percentiles::default()
        }
    }

    #[test]
    fn quiet_run_has_no_warnings() {
        assert!(warnings(&observed(&[40.0], &lag(20.0))).is_empty());
    }

    #[test]
    fn busy_generator_is_the_bottleneck() {
        let w = warnings(&observed(&[30.0, 97.0], &lag(5000.0)));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("thread 1 was busy 97%"), "{w:?}");
        assert!(w[1].contains("measure the generator"), "{w:?}");
    }

    #[test]
    fn late_but_idle_generator_blames_the_machine() {
        let w = warnings(&observed(&[5.0], &lag(30_000.0)));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("other processes"), "{w:?}");
    }

    #[test]
    fn shortfall_and_missing_work() {
        let quiet = lag(10.0);
        let mut o = observed(&[10.0], &quiet);
        o.target_rate = Some(2000.0);
        o.opened = 7;
        o.requests = Some(20_000);
        let w = warnings(&o);
        assert!(
            w.iter()
                .any(|w| w.contains("fell short") && w.contains("50.0%")),
            "{w:?}"
        );
        assert!(w.iter().any(|w| w.contains("only 7 of the 10")), "{w:?}");
        assert!(w.iter().any(|w| w.contains("10000 of the 20000")), "{w:?}");
        o.rps = 1990.0;
        o.target_rate = Some(2000.0);
        assert!(!warnings(&o).iter().any(|w| w.contains("fell short")));
    }
}
