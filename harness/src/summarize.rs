//! From runs to per-point summaries: the median throughput over repeats with its 95% bootstrap
//! interval, the median of each latency percentile, and the throughput ratio to every reference
//! server that ran the same point.
//!
//! Where it sits: runs (`runner.rs`) -> **summaries** -> results.json. The statistics themselves
//! (median, bootstrap intervals) are `stats.rs`, shared with `harness compare`; this file only
//! groups runs and fills the results types.

use gev_reports::results::{
    Interval, LatencyPercentiles, PointParams, PointSummary, ReferenceRatio, RunRecord,
};

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
                let theirs = throughputs(runs, &reference.name, point);
                if theirs.is_empty() {
                    continue;
                }
                match stats::ratio_of_medians_ci(&theirs, &own, &options) {
                    Ok(estimate) => ratios.push(ReferenceRatio {
                        reference: reference.name.clone(),
                        throughput: interval(estimate),
                    }),
                    Err(error) => notes.push(format!(
                        "{} at {point}: no ratio to {}: {error}",
                        server.name, reference.name
                    )),
                }
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
            });
        }
    }
    (summaries, notes)
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
    use gev_reports::results::ServerExit;

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
                "histograms":{{}},"timeseries":[],"warnings":[],"duration_secs":1.0}}"#
        );
        RunRecord {
            server: server.into(),
            point: point(loops),
            repeat,
            addr: "127.0.0.1:1".into(),
            summary: gev_loadgen::Summary::from_json(&json).unwrap(),
            server_cpu_secs: None,
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
        let (summaries, notes) = summarize(&servers(), &[point(1), point(2)], &runs);
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
        assert!((gev.ratios[0].throughput.median - 2.2).abs() < 1e-9);
        // The reference is not compared with itself.
        assert!(summaries[1].ratios.is_empty());
    }

    #[test]
    fn zero_throughput_gives_a_note_not_a_ratio() {
        let runs = vec![run("gev", 1, 0, 100.0, 1.0), run("ref", 1, 0, 0.0, 1.0)];
        let (summaries, notes) = summarize(&servers(), &[point(1)], &runs);
        assert_eq!(summaries.len(), 2);
        assert!(summaries[0].ratios.is_empty());
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("no ratio to ref"));
    }
}
