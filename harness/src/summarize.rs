//! From runs to per-point summaries: the median throughput over repeats with its 95% bootstrap
//! interval, the median of each latency percentile, the server's and the generator's CPU time
//! per request (median, 95% bootstrap interval), the ratios of throughput and server CPU per
//! request to every reference server that ran the same point, and what limited the point.
//!
//! Where it sits: runs (`runner.rs`) -> **summaries** -> results.json. The statistics themselves
//! (median, bootstrap and paired intervals) are `stats.rs`, shared with `harness compare`; this
//! file only groups runs and fills the results types.
//!
//! Ratios to a reference pair the runs by repeat (repeat `i` of both ran next to each other, or
//! at the same moment side by side) and give the geometric mean of the per-repeat ratios with a
//! Student-t interval on their logs, as the gate does. When the repeats do not pair up (a failed
//! run, a single repeat) the ratio of medians with a bootstrap interval stands in.
//!
//! A server at a Unix-socket or UDP point is also set against itself at the TCP twin of the
//! point (`vs_tcp`, issue 15): those ran one after the other, so that is the ratio of medians
//! with a bootstrap interval. UDP points carry loadgen's datagram counters summed over the runs.
//!
//! What limited a point is read from CPU utilisation (see [`LimitReading`]): the server side is
//! saturated when its processes kept the server cores it could use (min(server cores, loops))
//! at least [`SATURATED_UTILISATION`] busy over the measured window; the generator when its
//! busiest worker thread, or the loadgen cores as a whole, were that busy. Side by side, the
//! servers (and loadgens) of a point share their cores, so their CPU time is added up per
//! repeat before dividing. Each is the median over repeats.

#[cfg(doc)]
use gev_reports::results::SATURATED_UTILISATION;
use gev_reports::results::{
    DatagramCounts, Interval, LatencyPercentiles, Limit, LimitReading, PointParams, PointSummary,
    PointTransport, ReferenceRatio, RunRecord, TransportRatio,
};

use crate::spec::Schedule;
use crate::stats::{self, BootstrapOptions, Estimate};

/// A server's name and whether it is a reference, in spec order.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerEntry {
    pub name: String,
    pub reference: bool,
    pub framing: String,
}

/// One summary per server × point that has at least one completed run, in the order given, and
/// notes on anything that could not be computed.
pub fn summarize(
    servers: &[ServerEntry],
    points: &[PointParams],
    runs: &[RunRecord],
    schedule: Schedule,
) -> (Vec<PointSummary>, Vec<String>) {
    let options = BootstrapOptions::default();
    let mut summaries = Vec::new();
    let mut notes = Vec::new();
    for point in points {
        for server in servers.iter().filter(|s| s.framing == point.framing) {
            let own = throughputs(runs, &server.name, point);
            if own.is_empty() {
                continue;
            }
            let point_runs: Vec<&RunRecord> = runs_of(runs, &server.name, point).collect();
            let throughput = match stats::bootstrap_median_ci(&own, &options) {
                Ok(estimate) => interval(estimate),
                Err(error) => {
                    notes.push(format!(
                        "{} at {point}: no throughput interval: {error}",
                        server.name
                    ));
                    continue;
                }
            };
            let mut ratios = Vec::new();
            for reference in servers
                .iter()
                .filter(|r| r.reference && r.name != server.name && r.framing == point.framing)
            {
                let theirs: Vec<&RunRecord> = runs_of(runs, &reference.name, point).collect();
                if theirs.is_empty() {
                    continue;
                }
                let throughput_ratio =
                    match ratio(&theirs, &point_runs, |run| Some(run.summary.throughput.rps)) {
                        Ok(estimate) => estimate,
                        Err(error) => {
                            notes.push(format!(
                                "{} at {point}: no ratio to {}: {error}",
                                server.name, reference.name
                            ));
                            continue;
                        }
                    };
                let cpu_ratio = ratio(&theirs, &point_runs, RunRecord::server_cpu_us_per_request)
                    .ok()
                    .map(interval);
                ratios.push(ReferenceRatio {
                    reference: reference.name.clone(),
                    throughput: interval(throughput_ratio),
                    server_cpu_per_request: cpu_ratio,
                });
            }
            summaries.push(PointSummary {
                server: server.name.clone(),
                point: point.clone(),
                runs: point_runs.len() as u32,
                throughput_rps: throughput,
                latency_us: latency(&point_runs),
                errors: point_runs
                    .iter()
                    .map(|run| run.summary.total_errors())
                    .sum(),
                ratios,
                server_cpu_us_per_request: median_interval(
                    &point_runs,
                    RunRecord::server_cpu_us_per_request,
                ),
                generator_cpu_us_per_request: median_interval(
                    &point_runs,
                    RunRecord::generator_cpu_us_per_request,
                ),
                limit: limit(runs, &point_runs, schedule),
                datagrams: datagrams(&point_runs),
                vs_tcp: vs_tcp(runs, &server.name, point, &point_runs),
                server_udp: point_runs
                    .iter()
                    .filter_map(|run| run.server_udp())
                    .reduce(|a, b| a + b),
            });
        }
    }
    (summaries, notes)
}

/// The datagram counters of a UDP point's runs, summed; `None` when no run has them.
fn datagrams(runs: &[&RunRecord]) -> Option<DatagramCounts> {
    runs.iter()
        .filter_map(|run| DatagramCounts::of(&run.summary))
        .reduce(|a, b| a + b)
}

/// This server at a non-TCP point against itself at the TCP twin of the point: ratios of
/// medians (the two points did not run together, so there is nothing to pair).
fn vs_tcp(
    runs: &[RunRecord],
    server: &str,
    point: &PointParams,
    here: &[&RunRecord],
) -> Option<TransportRatio> {
    if point.transport.is_tcp() {
        return None;
    }
    let twin = PointParams {
        transport: PointTransport::Tcp,
        ..point.clone()
    };
    let tcp: Vec<&RunRecord> = runs_of(runs, server, &twin).collect();
    if tcp.is_empty() {
        return None;
    }
    let options = BootstrapOptions::default();
    let of_medians = |pick: fn(&RunRecord) -> Option<f64>| {
        let values = |runs: &[&RunRecord]| -> Option<Vec<f64>> {
            let values: Vec<f64> = runs.iter().filter_map(|run| pick(run)).collect();
            (!values.is_empty()).then_some(values)
        };
        stats::ratio_of_medians_ci(&values(&tcp)?, &values(here)?, &options)
            .ok()
            .map(interval)
    };
    Some(TransportRatio {
        throughput: of_medians(|run| Some(run.summary.throughput.rps))?,
        server_cpu_per_request: of_medians(RunRecord::server_cpu_us_per_request),
    })
}

fn runs_of<'a>(
    runs: &'a [RunRecord],
    server: &'a str,
    point: &'a PointParams,
) -> impl Iterator<Item = &'a RunRecord> + 'a {
    runs.iter()
        .filter(move |run| run.server == server && run.point.same_point(point))
}

fn throughputs(runs: &[RunRecord], server: &str, point: &PointParams) -> Vec<f64> {
    runs_of(runs, server, point)
        .map(|run| run.summary.throughput.rps)
        .collect()
}

/// The median over runs of `pick` with its bootstrap interval; `None` unless every run has it.
fn median_interval(runs: &[&RunRecord], pick: fn(&RunRecord) -> Option<f64>) -> Option<Interval> {
    let values: Option<Vec<f64>> = runs.iter().map(|run| pick(run)).collect();
    stats::bootstrap_median_ci(&values?, &BootstrapOptions::default())
        .ok()
        .map(interval)
}

/// `pick(candidate) / pick(reference)`: paired by repeat when every repeat of each side has a
/// partner with a value (and there are at least two), else the ratio of medians.
fn ratio(
    reference: &[&RunRecord],
    candidate: &[&RunRecord],
    pick: fn(&RunRecord) -> Option<f64>,
) -> Result<Estimate, stats::StatsError> {
    let paired: Vec<(f64, f64)> = candidate
        .iter()
        .filter_map(|run| {
            let partner = reference.iter().find(|r| r.repeat == run.repeat)?;
            Some((pick(partner)?, pick(run)?))
        })
        .collect();
    if paired.len() >= 2 && paired.len() == candidate.len() && paired.len() == reference.len() {
        let (theirs, ours): (Vec<f64>, Vec<f64>) = paired.into_iter().unzip();
        return stats::paired_ratio_ci(&theirs, &ours, 0.95);
    }
    let values = |runs: &[&RunRecord]| -> Result<Vec<f64>, stats::StatsError> {
        let values: Vec<f64> = runs.iter().filter_map(|run| pick(run)).collect();
        if values.is_empty() {
            Err(stats::StatsError::Empty)
        } else {
            Ok(values)
        }
    };
    stats::ratio_of_medians_ci(
        &values(reference)?,
        &values(candidate)?,
        &BootstrapOptions::default(),
    )
}

/// What limited this server's runs at the point: the medians over its repeats of the server
/// cores' and the generator's utilisation.
fn limit(all: &[RunRecord], own: &[&RunRecord], schedule: Schedule) -> Option<LimitReading> {
    let mut server = Vec::new();
    let mut generator = Vec::new();
    for run in own {
        // The runs that shared the machine with this one: side by side, every server's run of
        // the same point and repeat.
        let group: Vec<&RunRecord> = match schedule {
            Schedule::Alternating => vec![run],
            Schedule::SideBySide => all
                .iter()
                .filter(|other| other.point.same_point(&run.point) && other.repeat == run.repeat)
                .collect(),
        };
        if let Some(busy) = server_utilisation(&group) {
            server.push(busy);
        }
        if let Some(busy) = generator_utilisation(&group) {
            generator.push(busy);
        }
    }
    let server = stats::median(&server).ok()?;
    let generator = stats::median(&generator).ok()?;
    Some(LimitReading {
        server_utilisation: server,
        generator_utilisation: generator,
        limit: Limit::from_utilisation(server, generator),
    })
}

/// Server CPU time of the group over (window × the server cores it could keep busy).
fn server_utilisation(group: &[&RunRecord]) -> Option<f64> {
    let mut cpu = 0.0;
    let mut window: f64 = 0.0;
    let mut loops = 0usize;
    for run in group {
        cpu += run.server_cpu_secs?;
        window = window.max(run.server_cpu_window_secs?);
        loops += run.point.loops as usize;
    }
    let cores = match group.first()?.placement.as_ref() {
        Some(placement) => placement.server_cores.len().min(loops),
        None => loops,
    };
    (window > 0.0 && cores > 0).then(|| cpu / (window * cores as f64))
}

/// The larger of the busiest generator thread's busy fraction and the loadgen cores' busy
/// fraction over the group.
fn generator_utilisation(group: &[&RunRecord]) -> Option<f64> {
    let mut cpu = 0.0;
    let mut threads = 0usize;
    let mut busiest: f64 = 0.0;
    let mut window: f64 = 0.0;
    for run in group {
        let percent = &run.summary.generator_cpu_percent;
        if percent.is_empty() {
            return None;
        }
        busiest = percent.iter().copied().fold(busiest, f64::max);
        cpu += run.generator_cpu_secs()?;
        threads += percent.len();
        window = window.max(run.summary.duration_secs);
    }
    let cores = match group.first()?.placement.as_ref() {
        Some(placement) => placement.loadgen_cores.len().min(threads),
        None => threads,
    };
    let cores_busy = if window > 0.0 && cores > 0 {
        cpu / (window * cores as f64)
    } else {
        0.0
    };
    Some((busiest / 100.0).max(cores_busy))
}

fn interval(estimate: Estimate) -> Interval {
    Interval {
        median: estimate.point,
        low: estimate.low,
        high: estimate.high,
        confidence: estimate.confidence,
    }
}

/// The median over runs of each corrected latency percentile.
fn latency(runs: &[&RunRecord]) -> LatencyPercentiles {
    let median_of = |pick: fn(&RunRecord) -> f64| {
        let values: Vec<f64> = runs.iter().map(|run| pick(run)).collect();
        stats::median(&values).unwrap_or(f64::NAN)
    };
    LatencyPercentiles {
        p50: median_of(|run| run.summary.latency_us.p50),
        p90: median_of(|run| run.summary.latency_us.p90),
        p99: median_of(|run| run.summary.latency_us.p99),
        p999: median_of(|run| run.summary.latency_us.p999),
        max: median_of(|run| run.summary.latency_us.max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gev_reports::results::{Placement, ServerExit};

    fn point(loops: u32) -> PointParams {
        PointParams {
            loops,
            framing: "raw".into(),
            connections: 8,
            payload_size: 64,
            pipeline: 1,
            rate: None,
            duration_secs: 1.0,
            warmup_secs: 0.0,
            tls: Default::default(),
            transport: Default::default(),
        }
    }

    /// A run whose summary says `rps` and p50 = `p50`, built from loadgen's own JSON form.
    fn run(server: &str, loops: u32, repeat: u32, rps: f64, p50: f64) -> RunRecord {
        let percentiles = format!(
            r#"{{"p50":{p50},"p90":{p50},"p99":{p50},"p999":{p50},"max":{p50},"mean":{p50},"count":1}}"#
        );
        let json = format!(
            r#"{{"schema":"gev-loadgen/1",
                "config":{{"target":"x","framing":"raw","connections":8,"threads":1,
                  "duration_secs":1.0,"warmup_secs":0.0,"requests":null,"pipeline":1,"rate":null,
                  "size_min":64,"size_max":64,"verify":false,"timeout_ms":5000,
                  "connect_rate":null,"pin":false}},
                "env":{{"cpu_model":"c","cores":2,"kernel":"k","version":"v"}},
                "connections":{{"opened":8,"failed":0}},
                "requests":{{"sent":1,"completed":1,"errors":{{"reset":1}}}},
                "throughput":{{"rps":{rps},"bytes_per_sec":1.0}},
                "target_rate":null,
                "latency_us":{percentiles},"latency_uncorrected_us":{percentiles},
                "connect_us":{percentiles},"loop_lag_us":{percentiles},
                "histograms":{{}},"timeseries":[],"warnings":[],"duration_secs":1.0,
                "generator_cpu_percent":[50.0]}}"#
        );
        RunRecord {
            server: server.into(),
            point: point(loops),
            repeat,
            addr: "127.0.0.1:1".into(),
            summary: gev_loadgen::Summary::from_json(&json).unwrap(),
            server_cpu_secs: None,
            server_cpu_window_secs: None,
            placement: None,
            metrics_before: None,
            metrics_after: None,
            server_exit: ServerExit::Clean { after_secs: 0.1 },
            hosts: Vec::new(),
        }
    }

    fn servers() -> Vec<ServerEntry> {
        vec![
            ServerEntry {
                name: "gev".into(),
                reference: false,
                framing: "raw".into(),
            },
            ServerEntry {
                name: "ref".into(),
                reference: true,
                framing: "raw".into(),
            },
        ]
    }

    #[test]
    fn medians_intervals_and_ratios() {
        let runs = vec![
            run("gev", 1, 0, 100.0, 10.0),
            run("ref", 1, 0, 50.0, 20.0),
            run("gev", 1, 1, 120.0, 12.0),
            run("ref", 1, 1, 50.0, 20.0),
            run("gev", 1, 2, 110.0, 30.0),
            run("ref", 1, 2, 50.0, 20.0),
        ];
        let (summaries, notes) = summarize(
            &servers(),
            &[point(1), point(2)],
            &runs,
            Schedule::Alternating,
        );
        assert!(notes.is_empty(), "{notes:?}");
        // loops=2 has no runs: no summaries for it.
        assert_eq!(summaries.len(), 2);
        let gev = &summaries[0];
        assert_eq!(gev.server, "gev");
        assert_eq!(gev.runs, 3);
        assert_eq!(gev.throughput_rps.median, 110.0);
        assert!(gev.throughput_rps.low >= 100.0 && gev.throughput_rps.high <= 120.0);
        assert_eq!(gev.latency_us.p50, 12.0);
        assert_eq!(gev.errors, 3);
        assert_eq!(gev.ratios.len(), 1);
        assert_eq!(gev.ratios[0].reference, "ref");
        // Paired by repeat: the geometric mean of 100/50, 120/50 and 110/50.
        let geometric_mean = (2.0_f64 * 2.4 * 2.2).powf(1.0 / 3.0);
        assert!((gev.ratios[0].throughput.median - geometric_mean).abs() < 1e-9);
        assert!(gev.ratios[0].throughput.low < 2.0 && gev.ratios[0].throughput.high > 2.4);
        // No CPU time was read: no cost figures, no limit.
        assert!(gev.server_cpu_us_per_request.is_none() && gev.limit.is_none());
        // The reference is not compared with itself.
        assert!(summaries[1].ratios.is_empty());
    }

    #[test]
    fn transports_get_their_tcp_ratio_and_udp_its_datagram_counters() {
        let udp_point = PointParams {
            transport: PointTransport::Udp,
            ..point(1)
        };
        let mut runs = Vec::new();
        for repeat in 0..3 {
            runs.push(costed("gev", repeat, 100_000.0, 0.5, 50.0));
            let mut udp = costed("gev", repeat, 50_000.0, 0.5, 50.0);
            udp.point = udp_point.clone();
            udp.summary.datagrams = Some(gev_loadgen::summary::DatagramSummary {
                sent: 1000,
                received: 990,
                lost: 10,
                duplicated: 1,
                reordered: 2,
                late: 3,
                loss_deadline_ms: 5000,
            });
            // The server's own counters, scraped before and after (two loops).
            udp.metrics_before = Some(
                "gev_udp_datagrams_received_total{loop=\"0\"} 7\n\
                 gev_udp_datagrams_sent_total{loop=\"0\"} 7\n\
                 gev_udp_recv_batches_total{loop=\"0\"} 1\n\
                 gev_udp_send_batches_total{loop=\"0\"} 1\n"
                    .into(),
            );
            udp.metrics_after = Some(
                "gev_udp_datagrams_received_total{loop=\"0\"} 507\n\
                 gev_udp_datagrams_received_total{loop=\"1\"} 500\n\
                 gev_udp_datagrams_sent_total{loop=\"0\"} 507\n\
                 gev_udp_datagrams_sent_total{loop=\"1\"} 498\n\
                 gev_udp_dropped_output_full_total{loop=\"1\"} 2\n\
                 gev_udp_recv_batches_total{loop=\"0\"} 51\n\
                 gev_udp_recv_batches_total{loop=\"1\"} 50\n\
                 gev_udp_send_batches_total{loop=\"0\"} 101\n\
                 gev_udp_send_batches_total{loop=\"1\"} 100\n"
                    .into(),
            );
            runs.push(udp);
        }
        let (summaries, notes) = summarize(
            &servers(),
            &[point(1), udp_point],
            &runs,
            Schedule::Alternating,
        );
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(summaries.len(), 2);
        let (tcp, udp) = (&summaries[0], &summaries[1]);
        assert!(tcp.vs_tcp.is_none() && tcp.datagrams.is_none());
        let ratio = udp.vs_tcp.as_ref().expect("a ratio to TCP");
        assert!((ratio.throughput.median - 0.5).abs() < 1e-9, "{ratio:?}");
        // Half the requests for the same CPU time: twice the CPU per request.
        let cpu = ratio.server_cpu_per_request.expect("a CPU ratio");
        assert!((cpu.median - 2.0).abs() < 1e-9, "{cpu:?}");
        let counts = udp.datagrams.expect("datagram counters");
        assert_eq!((counts.sent, counts.lost, counts.late), (3000, 30, 9));
        // The server's counters: the growth between the scrapes, summed over loops and runs.
        assert!(tcp.server_udp.is_none());
        let server = udp.server_udp.expect("the server's UDP counters");
        assert_eq!(
            (
                server.datagrams_received,
                server.datagrams_sent,
                server.dropped()
            ),
            (3000, 2994, 6)
        );
        assert_eq!((server.recv_batches, server.send_batches), (300, 600));
        assert_eq!(server.datagrams_per_recv_call, Some(10.0));
        assert_eq!(server.datagrams_per_send_call, Some(2994.0 / 600.0));
    }

    #[test]
    fn zero_throughput_gives_a_note_not_a_ratio() {
        let runs = vec![run("gev", 1, 0, 100.0, 1.0), run("ref", 1, 0, 0.0, 1.0)];
        let (summaries, notes) = summarize(&servers(), &[point(1)], &runs, Schedule::Alternating);
        assert_eq!(summaries.len(), 2);
        assert!(summaries[0].ratios.is_empty());
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("no ratio to ref"));
    }

    /// A run with CPU figures: `server_cpu` seconds over a 1 s window, one loadgen thread
    /// `generator_percent` busy, pinned one core each.
    fn costed(
        server: &str,
        repeat: u32,
        rps: f64,
        server_cpu: f64,
        generator_percent: f64,
    ) -> RunRecord {
        let mut record = run(server, 1, repeat, rps, 10.0);
        record.server_cpu_secs = Some(server_cpu);
        record.server_cpu_window_secs = Some(1.0);
        record.summary.generator_cpu_percent = vec![generator_percent];
        record.placement = Some(Placement {
            server_cores: vec![0],
            loadgen_cores: vec![1],
            loadgen_threads: 1,
        });
        record
    }

    #[test]
    fn cost_per_request_and_its_ratio_to_the_reference() {
        // gev: 0.5 s of CPU for 100 000 requests = 5 µs each; ref: 0.6 s for 100 000 = 6 µs.
        let mut runs = Vec::new();
        for repeat in 0..4 {
            let jitter = 1.0 + 0.01 * f64::from(repeat);
            runs.push(costed("gev", repeat, 100_000.0, 0.5 * jitter, 97.0));
            runs.push(costed("ref", repeat, 100_000.0, 0.6 * jitter, 98.0));
        }
        let (summaries, notes) = summarize(&servers(), &[point(1)], &runs, Schedule::Alternating);
        assert!(notes.is_empty(), "{notes:?}");
        let gev = &summaries[0];
        let cpu = gev.server_cpu_us_per_request.expect("server cost");
        assert!((cpu.median - 5.0 * 1.015).abs() < 0.01, "{cpu:?}");
        assert!(cpu.low <= cpu.median && cpu.median <= cpu.high);
        // loadgen: 97% of 1 s over 100 000 requests.
        let generator = gev.generator_cpu_us_per_request.expect("generator cost");
        assert!((generator.median - 9.7).abs() < 1e-9, "{generator:?}");
        // The same jitter on both sides: the paired ratio is exactly 5/6 with no width.
        let ratio = gev.ratios[0].server_cpu_per_request.expect("cost ratio");
        assert!((ratio.median - 5.0 / 6.0).abs() < 1e-9, "{ratio:?}");
        assert!((ratio.high - ratio.low).abs() < 1e-9, "{ratio:?}");
        // Server 50% busy, generator 97%: the generator limited the run.
        let limit = gev.limit.expect("limit");
        assert_eq!(limit.limit, Limit::Generator);
        assert!((limit.server_utilisation - 0.5 * 1.015).abs() < 0.01);
        assert!((limit.generator_utilisation - 0.97).abs() < 1e-9);
    }

    #[test]
    fn side_by_side_utilisation_adds_up_the_servers_sharing_the_cores() {
        // Two servers at once on one server core, each 45% busy: together 90%, saturated; two
        // loadgens on one core, each 40%: 80%, not.
        let runs = vec![
            costed("gev", 0, 50_000.0, 0.45, 40.0),
            costed("ref", 0, 50_000.0, 0.45, 40.0),
            costed("gev", 1, 50_000.0, 0.45, 40.0),
            costed("ref", 1, 50_000.0, 0.45, 40.0),
        ];
        let (side_by_side, _) = summarize(&servers(), &[point(1)], &runs, Schedule::SideBySide);
        let limit = side_by_side[0].limit.expect("limit");
        assert!((limit.server_utilisation - 0.9).abs() < 1e-9, "{limit:?}");
        assert!(
            (limit.generator_utilisation - 0.8).abs() < 1e-9,
            "{limit:?}"
        );
        assert_eq!(limit.limit, Limit::Server);
        // Read as if each had run alone, neither would be.
        let (alone, _) = summarize(&servers(), &[point(1)], &runs, Schedule::Alternating);
        assert_eq!(alone[0].limit.expect("limit").limit, Limit::Neither);
    }
}
