//! Shared test data: a synthetic sweep with real HdrHistogram latency data (three servers, two
//! loop counts, a closed-loop workload and an open-loop rate sweep, three repeats each), and
//! checks on the files a render writes.

#![allow(dead_code)]

use std::path::Path;

use base64::Engine;
use gev_reports::model::{
    Estimate, LatencyHistogram, LatencySummary, PointKey, PointSummary, Report, RunSeries,
    TimeSample,
};
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Servers of the synthetic sweep, the first being the one under test.
pub const SERVERS: [&str; 3] = ["gev-echo", "ref-tokio-echo", "ref-mio-echo"];
/// Loop counts of the synthetic sweep.
pub const LOOPS: [u32; 2] = [1, 2];
/// The closed-loop workload label.
pub const CLOSED: &str = "raw 64 B, 50 conns";
/// The open-loop workload label.
pub const OPEN: &str = "raw 64 B, 50 conns, open loop";
/// Offered rates of the open-loop workload.
pub const RATES: [f64; 4] = [15_000.0, 30_000.0, 45_000.0, 60_000.0];
/// Repeats per point.
pub const REPEATS: u32 = 3;

/// A deterministic pseudo-random source (xorshift), so tests need no rand dependency.
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Noise(seed.max(1))
    }

    /// Uniform in (0, 1].
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
}

/// A latency histogram (nanoseconds) with a median near `median_us` and an exponential tail,
/// recorded as loadgen records (1 µs to 60 s, 3 significant digits).
pub fn latency_histogram(median_us: f64, samples: u32, seed: u64) -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).unwrap();
    let mut noise = Noise::new(seed);
    for _ in 0..samples {
        let body = median_us * (0.6 + 0.8 * noise.unit());
        let tail = -median_us * 0.6 * noise.unit().ln();
        let ns = ((body + tail) * 1_000.0) as u64;
        histogram.saturating_record(ns.max(1_000));
    }
    histogram
}

/// The V2 deflate base64 form loadgen writes into `Summary::histograms`.
pub fn encode_base64(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(histogram, &mut bytes)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Throughput a server reaches at a loop count (gev and mio scale, tokio a bit less).
pub fn capacity(server_index: usize, loops: u32) -> f64 {
    let per_loop = [60_000.0, 45_000.0, 65_000.0][server_index];
    per_loop * f64::from(loops) * if server_index == 1 { 0.85 } else { 0.95 }
}

/// One second-by-second series with a warm-up ramp in the first seconds.
pub fn time_samples(rps: f64, p99_us: f64, seconds: u32, seed: u64) -> Vec<TimeSample> {
    let mut noise = Noise::new(seed);
    (1..=seconds)
        .map(|t| {
            let ramp = if t <= 2 {
                0.6 + 0.2 * f64::from(t)
            } else {
                1.0
            };
            TimeSample {
                t_secs: f64::from(t),
                rps: rps * ramp * (0.97 + 0.06 * noise.unit()),
                p99_us: p99_us * (0.9 + 0.3 * noise.unit()) / ramp,
            }
        })
        .collect()
}

/// Percentiles of a nanosecond histogram in microseconds.
pub fn summary_of(histogram: &Histogram<u64>) -> LatencySummary {
    LatencySummary {
        p50: histogram.value_at_quantile(0.5) as f64 / 1_000.0,
        p99: histogram.value_at_quantile(0.99) as f64 / 1_000.0,
        p999: histogram.value_at_quantile(0.999) as f64 / 1_000.0,
    }
}

/// The synthetic sweep as a plain report.
pub fn synthetic_report() -> Report {
    let mut report = Report {
        title: "gev sweep (synthetic)".into(),
        environment: vec![
            ("cpu".into(), "Synthetic CPU @ 3.0GHz".into()),
            ("cores".into(), "2".into()),
            ("kernel".into(), "6.1.0-test".into()),
        ],
        servers: SERVERS.iter().map(|s| s.to_string()).collect(),
        ..Report::default()
    };
    let mut seed = 1;
    for (server_index, server) in SERVERS.iter().enumerate() {
        for loops in LOOPS {
            let loads: Vec<(&str, Option<f64>)> = std::iter::once((CLOSED, None))
                .chain(RATES.iter().map(|r| (OPEN, Some(*r))))
                .collect();
            for (workload, rate) in loads {
                let cap = capacity(server_index, loops);
                let rps = rate.map_or(cap, |r| r.min(cap));
                let overload = rate.map_or(1.0, |r| (r / cap).max(1.0).powi(3));
                let median_us =
                    50.0 / f64::from(loops) * overload * (1.0 + server_index as f64 * 0.2);
                let key = PointKey {
                    server: server.to_string(),
                    loops,
                    workload: workload.to_string(),
                    offered_rate: rate,
                };
                let histograms: Vec<Histogram<u64>> = (0..REPEATS)
                    .map(|repeat| {
                        seed += 1;
                        report.runs.push(RunSeries {
                            key: key.clone(),
                            repeat,
                            samples: time_samples(rps, median_us * 4.0, 8, seed),
                        });
                        latency_histogram(median_us, 20_000, seed)
                    })
                    .collect();
                let mut merged = histograms[0].clone();
                for h in &histograms[1..] {
                    merged.add(h).unwrap();
                }
                report.points.push(PointSummary {
                    key,
                    throughput: Estimate {
                        median: rps,
                        low: rps * 0.96,
                        high: rps * 1.03,
                    },
                    latency_us: summary_of(&merged),
                    histogram: LatencyHistogram::Recorded(Box::new(merged)),
                    throughput_ratios: Vec::new(),
                });
            }
        }
    }
    report
}

/// Decode a PNG file and return its size.
pub fn png_size(path: &Path) -> (u32, u32) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let decoder = png::Decoder::new(file);
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{} is not a PNG: {e}", path.display()));
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buffer)
        .unwrap_or_else(|e| panic!("{} has no decodable frame: {e}", path.display()));
    assert!(
        buffer.iter().any(|b| *b != 255),
        "{} is blank",
        path.display()
    );
    (info.width, info.height)
}

/// Parse an SVG file as XML and return the text of its `<text>` elements.
pub fn svg_texts(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let document = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}", path.display()));
    assert_eq!(document.root_element().tag_name().name(), "svg");
    document
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or_default().trim().to_string())
        .collect()
}

/// Every rendered plot is a PNG of the plot size and an SVG carrying its title, shown in the
/// HTML page (`<figure id=STEM>`) and linked from the Markdown page (PNG and SVG).
pub fn assert_plots_in_pages(rendered: &gev_reports::Rendered, html: &str, md: &str) {
    for plot in &rendered.plots {
        assert_eq!(
            png_size(&plot.png),
            gev_reports::plot::style::PLOT_SIZE,
            "{}",
            plot.png.display()
        );
        let texts = svg_texts(&plot.svg);
        assert!(
            texts.iter().any(|t| t == &plot.title),
            "{} lacks its title among {texts:?}",
            plot.svg.display()
        );
        let stem = plot.png.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            html.contains(&format!("<figure id=\"{stem}\">")),
            "{stem} not in html"
        );
        for ext in ["png", "svg"] {
            assert!(
                md.contains(&format!("(plots/{stem}.{ext})")),
                "{stem} {ext} not in md"
            );
        }
    }
}

/// A loadgen summary of one synthetic run.
pub fn loadgen_summary(
    histogram: Option<&Histogram<u64>>,
    rps: f64,
    rate: Option<f64>,
    samples: &[TimeSample],
) -> gev_loadgen::Summary {
    use gev_loadgen::{Connections, Env, Percentiles, Requests, RunConfig, Throughput, TimePoint};
    let percentiles = histogram.map_or_else(Percentiles::default, |h| Percentiles {
        p50: h.value_at_quantile(0.5) as f64 / 1_000.0,
        p90: h.value_at_quantile(0.9) as f64 / 1_000.0,
        p99: h.value_at_quantile(0.99) as f64 / 1_000.0,
        p999: h.value_at_quantile(0.999) as f64 / 1_000.0,
        max: h.max() as f64 / 1_000.0,
        mean: h.mean() / 1_000.0,
        count: h.len(),
    });
    let mut histograms = std::collections::BTreeMap::new();
    if let Some(h) = histogram {
        histograms.insert("latency".to_string(), encode_base64(h));
    }
    gev_loadgen::Summary {
        schema: gev_loadgen::SCHEMA.into(),
        config: RunConfig {
            target: "127.0.0.1:40000".into(),
            framing: "raw".into(),
            connections: 50,
            threads: 1,
            duration_secs: Some(8.0),
            warmup_secs: 1.0,
            requests: None,
            pipeline: 1,
            rate,
            size_min: 64,
            size_max: 64,
            verify: false,
            timeout_ms: 5_000,
            connect_rate: None,
            pin: true,
            http_method: None,
            ws_message: None,
        },
        env: Env {
            cpu_model: "Synthetic CPU @ 3.0GHz".into(),
            cores: 2,
            kernel: "6.1.0-test".into(),
            version: "0.1.0".into(),
        },
        connections: Connections {
            opened: 50,
            failed: 0,
        },
        requests: Requests {
            sent: (rps * 8.0) as u64,
            completed: (rps * 8.0) as u64,
            errors: Default::default(),
        },
        throughput: Throughput {
            rps,
            bytes_per_sec: rps * 64.0,
            bytes_sent: (rps * 8.0 * 64.0) as u64,
            bytes_received: (rps * 8.0 * 64.0) as u64,
        },
        target_rate: rate,
        latency_us: percentiles,
        latency_uncorrected_us: percentiles,
        connect_us: Percentiles::default(),
        loop_lag_us: Percentiles::default(),
        histograms,
        timeseries: samples
            .iter()
            .map(|s| TimePoint {
                t: s.t_secs,
                rps: s.rps,
                p99_us: s.p99_us,
            })
            .collect(),
        warnings: Vec::new(),
        duration_secs: 8.0,
        generator_cpu_percent: vec![35.0],
        misbehaving: None,
        window_start_unix_ns: None,
        tls: None,
        datagrams: None,
    }
}

/// The point parameters of the synthetic sweep.
pub fn point_params(loops: u32, rate: Option<f64>) -> gev_reports::results::PointParams {
    gev_reports::results::PointParams {
        loops,
        framing: "raw".into(),
        connections: 50,
        payload_size: 64,
        pipeline: 1,
        rate,
        duration_secs: 8.0,
        warmup_secs: 1.0,
        tls: Default::default(),
        transport: Default::default(),
    }
}

/// The synthetic sweep as the harness writes it: every run with a real loadgen summary (its
/// latency HdrHistogram V2-deflate encoded in base64), a summary per point with intervals and
/// ratios to the references, and one failed run.
pub fn synthetic_results() -> gev_reports::Results {
    use gev_reports::results::{
        Environment, Interval, LatencyPercentiles, PointSummary as HarnessPoint, ReferenceRatio,
        Results, RunFailure, RunRecord, ServerExit, ServerRecord, SpecRecord, SCHEMA,
    };
    let mut rates: Vec<Option<f64>> = vec![None];
    rates.extend(RATES.iter().map(|r| Some(*r)));
    let mut runs = Vec::new();
    let mut summaries: Vec<HarnessPoint> = Vec::new();
    let mut seed = 1;
    for loops in LOOPS {
        for rate in &rates {
            let mut medians = Vec::new();
            for (server_index, server) in SERVERS.iter().enumerate() {
                let cap = capacity(server_index, loops);
                let rps = rate.map_or(cap, |r| r.min(cap));
                let overload = rate.map_or(1.0, |r| (r / cap).max(1.0).powi(3));
                let median_us =
                    50.0 / f64::from(loops) * overload * (1.0 + server_index as f64 * 0.2);
                let mut histograms = Vec::new();
                for repeat in 0..REPEATS {
                    seed += 1;
                    let histogram = latency_histogram(median_us, 20_000, seed);
                    let samples = time_samples(rps, median_us * 4.0, 8, seed);
                    runs.push(RunRecord {
                        server: server.to_string(),
                        point: point_params(loops, *rate),
                        repeat,
                        addr: "127.0.0.1:40000".into(),
                        summary: loadgen_summary(Some(&histogram), rps, *rate, &samples),
                        server_cpu_secs: Some(7.5),
                        server_cpu_window_secs: Some(8.0),
                        placement: None,
                        metrics_before: None,
                        metrics_after: None,
                        server_exit: ServerExit::Clean { after_secs: 0.05 },
                        hosts: Vec::new(),
                    });
                    histograms.push(histogram);
                }
                let mut merged = histograms[0].clone();
                for h in &histograms[1..] {
                    merged.add(h).unwrap();
                }
                let latency = summary_of(&merged);
                medians.push(rps);
                summaries.push(HarnessPoint {
                    server: server.to_string(),
                    point: point_params(loops, *rate),
                    runs: REPEATS,
                    throughput_rps: Interval {
                        median: rps,
                        low: rps * 0.96,
                        high: rps * 1.03,
                        confidence: 0.95,
                    },
                    latency_us: LatencyPercentiles {
                        p50: latency.p50,
                        p90: merged.value_at_quantile(0.9) as f64 / 1_000.0,
                        p99: latency.p99,
                        p999: latency.p999,
                        max: merged.max() as f64 / 1_000.0,
                    },
                    errors: 0,
                    ratios: Vec::new(),
                    // 7.5 s of server CPU over the 8 s window's requests.
                    server_cpu_us_per_request: Some(Interval {
                        median: 7.5e6 / (rps * 8.0),
                        low: 7.2e6 / (rps * 8.0),
                        high: 7.8e6 / (rps * 8.0),
                        confidence: 0.95,
                    }),
                    generator_cpu_us_per_request: None,
                    limit: None,
                    datagrams: None,
                    vs_tcp: None,
                    server_udp: None,
                });
            }
            // Ratios to the references, as the harness computes them (with an interval).
            let at_point = summaries.len() - SERVERS.len();
            for (index, summary) in summaries[at_point..].iter_mut().enumerate() {
                for (reference_index, reference) in SERVERS.iter().enumerate().skip(1) {
                    if reference_index == index {
                        continue;
                    }
                    let ratio = medians[index] / medians[reference_index];
                    summary.ratios.push(ReferenceRatio {
                        reference: reference.to_string(),
                        throughput: Interval {
                            median: ratio,
                            low: ratio * 0.95,
                            high: ratio * 1.05,
                            confidence: 0.95,
                        },
                        server_cpu_per_request: None,
                    });
                }
            }
        }
    }
    Results {
        schema: SCHEMA.into(),
        created: "2026-11-25T13:45:00Z".into(),
        environment: Environment {
            cpu: "Synthetic CPU @ 3.0GHz".into(),
            cores: 2,
            kernel: "6.1.0-test".into(),
            rustc: "rustc 1.85.0".into(),
            git_commit: Some("0123abc".into()),
            pinning: "server on core 0, loadgen on core 1 (taskset)".into(),
            load_average: Some([0.5, 0.4, 0.3]),
            harness_version: "0.1.0".into(),
        },
        spec: SpecRecord {
            servers: SERVERS
                .iter()
                .map(|name| ServerRecord {
                    name: name.to_string(),
                    command: format!("{name} --port {{port}} --loops {{loops}}"),
                    reference: name.starts_with("ref-"),
                    metrics: false,
                    transport_commands: Default::default(),
                })
                .collect(),
            loops: LOOPS.to_vec(),
            connections: vec![50],
            payload_sizes: vec![64],
            framings: vec!["raw".into()],
            rates,
            pipeline: 1,
            duration_secs: 8.0,
            warmup_secs: 1.0,
            repeats: REPEATS,
            source: Some("sweeps/synthetic.toml".into()),
            text: None,
            schedule: None,
            transports: Vec::new(),
        },
        runs,
        summaries,
        failures: vec![RunFailure {
            server: "gev-echo".into(),
            point: point_params(2, None),
            repeat: 3,
            error: "server never opened its port within 5 s".into(),
        }],
        notes: vec!["synthetic data".into()],
        hosts: None,
    }
}
