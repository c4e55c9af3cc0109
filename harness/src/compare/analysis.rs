//! From repeated runs of two servers to one gate reading per metric: the candidate/baseline ratio
//! of throughput, p50 and p99 latency (and the server's CPU time per request, when the runner
//! could read it), its 95% interval, and the verdict.
//!
//! Where it sits in `harness compare`: paired runs -> [`RunFigures`] per run -> **this
//! analysis** -> the report (`report.rs`: markdown or JSON) and the exit code. Same-run
//! comparisons are paired (repeat `i` of each side ran next to each other); comparisons against a
//! stored baseline are not, and use the weaker independent-samples interval.

use serde::{Deserialize, Serialize};

use crate::stats::{self, BootstrapOptions, Direction, Estimate, StatsError, Verdict};

/// The figures of one loadgen run that the gate compares.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunFigures {
    /// Completed requests per second.
    pub throughput_rps: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// CPU time the server process spent per completed request, microseconds (from the
    /// scheduler's per-thread run time over the measured window). It moves with the server's own
    /// cost and far less than throughput with what else the machine runs; absent when the
    /// runner could not read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_request: Option<f64>,
}

impl RunFigures {
    /// Takes the gate's figures from a loadgen summary (latency from intended send time).
    pub fn from_summary(summary: &gev_loadgen::Summary) -> RunFigures {
        RunFigures {
            throughput_rps: summary.throughput.rps,
            p50_us: summary.latency_us.p50,
            p99_us: summary.latency_us.p99,
            server_cpu_us_per_request: None,
        }
    }
}

/// A metric the gate judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Throughput,
    P50,
    P99,
    ServerCpu,
}

impl Metric {
    pub const ALL: [Metric; 4] = [
        Metric::Throughput,
        Metric::P50,
        Metric::P99,
        Metric::ServerCpu,
    ];

    /// The name in tables and JSON.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Throughput => "throughput (req/s)",
            Metric::P50 => "p50 latency (µs)",
            Metric::P99 => "p99 latency (µs)",
            Metric::ServerCpu => "server CPU per request (µs)",
        }
    }

    /// Which way this metric gets worse.
    pub fn direction(self) -> Direction {
        match self {
            Metric::Throughput => Direction::HigherIsBetter,
            Metric::P50 | Metric::P99 | Metric::ServerCpu => Direction::LowerIsBetter,
        }
    }

    /// This metric's value in one run, if the run measured it.
    pub fn value(self, figures: &RunFigures) -> Option<f64> {
        match self {
            Metric::Throughput => Some(figures.throughput_rps),
            Metric::P50 => Some(figures.p50_us),
            Metric::P99 => Some(figures.p99_us),
            Metric::ServerCpu => figures.server_cpu_us_per_request,
        }
    }
}

/// How the two sides' runs relate, which decides the interval and how much to trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// Both servers ran in this session (side by side or interleaved): paired t interval on
    /// log ratios.
    SameRunPaired,
    /// The baseline was read from a stored file (another session, maybe another machine state):
    /// bootstrap interval of the ratio of medians. Weaker evidence.
    StoredBaseline,
}

/// One metric's reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricComparison {
    pub metric: Metric,
    pub baseline_median: f64,
    pub candidate_median: f64,
    /// candidate / baseline, with its interval.
    pub ratio: Estimate,
    pub verdict: Verdict,
}

/// Compares every metric of `candidate` runs against `baseline` runs; a metric some run lacks
/// (server CPU when it could not be read) is left out.
///
/// `threshold` is a fraction (0.05 = 5%). For [`Evidence::SameRunPaired`] both slices must have
/// the same length, element `i` of each having run next to each other. With fewer than
/// [`stats::MIN_ROUNDS_FOR_VERDICT`] runs per side no reading is `regressed` or `improved`
/// ([`stats::supported_verdict`]).
pub fn compare_runs(
    baseline: &[RunFigures],
    candidate: &[RunFigures],
    evidence: Evidence,
    threshold: f64,
) -> Result<Vec<MetricComparison>, StatsError> {
    let values = |runs: &[RunFigures], metric: Metric| -> Option<Vec<f64>> {
        runs.iter().map(|f| metric.value(f)).collect()
    };
    Metric::ALL
        .iter()
        .filter_map(|&metric| {
            Some((
                metric,
                values(baseline, metric)?,
                values(candidate, metric)?,
            ))
        })
        .map(|(metric, base, cand)| {
            let ratio = match evidence {
                Evidence::SameRunPaired => stats::paired_ratio_ci(&base, &cand, 0.95)?,
                Evidence::StoredBaseline => {
                    stats::ratio_of_medians_ci(&base, &cand, &BootstrapOptions::default())?
                }
            };
            Ok(MetricComparison {
                metric,
                baseline_median: stats::median(&base)?,
                candidate_median: stats::median(&cand)?,
                // Fewer rounds than a sign test can support never fail (or flatter) a candidate,
                // however narrow the interval came out.
                verdict: stats::supported_verdict(
                    stats::verdict(&ratio, metric.direction(), threshold),
                    base.len().min(cand.len()),
                ),
                ratio,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(rps: &[f64]) -> Vec<RunFigures> {
        // Closed loop with 50 connections: latency follows throughput (Little's law).
        rps.iter()
            .map(|&r| RunFigures {
                throughput_rps: r,
                p50_us: 50.0e6 / r,
                p99_us: 2.0 * 50.0e6 / r,
                server_cpu_us_per_request: Some(0.9e6 / r),
            })
            .collect()
    }

    #[test]
    fn a_slower_candidate_regresses_every_metric_in_its_own_direction() {
        let baseline = runs(&[
            100_000.0, 98_000.0, 101_000.0, 99_500.0, 100_200.0, 99_000.0,
        ]);
        let candidate = runs(&[80_000.0, 78_500.0, 80_800.0, 79_000.0, 80_100.0, 79_600.0]);
        let readings = compare_runs(&baseline, &candidate, Evidence::SameRunPaired, 0.05).unwrap();
        assert_eq!(readings.len(), 4);
        for reading in &readings {
            assert_eq!(reading.verdict, Verdict::Regressed, "{reading:?}");
        }
        assert!(readings[0].ratio.point < 0.85);
        assert!(readings[1].ratio.point > 1.15);
    }

    #[test]
    fn identical_runs_are_no_change_with_either_evidence() {
        let same = runs(&[100_000.0, 98_000.0, 101_000.0, 99_500.0, 100_500.0]);
        for evidence in [Evidence::SameRunPaired, Evidence::StoredBaseline] {
            let readings = compare_runs(&same, &same, evidence, 0.05).unwrap();
            for reading in readings {
                assert_eq!(
                    reading.verdict,
                    Verdict::NoChange,
                    "{evidence:?} {reading:?}"
                );
            }
        }
    }

    #[test]
    fn too_few_rounds_are_inconclusive_however_clear() {
        // Four rounds 20% slower: a narrow interval, but four rounds cannot support a verdict.
        let baseline = runs(&[100_000.0, 98_000.0, 101_000.0, 99_500.0]);
        let candidate = runs(&[80_000.0, 78_500.0, 80_800.0, 79_000.0]);
        for evidence in [Evidence::SameRunPaired, Evidence::StoredBaseline] {
            let readings = compare_runs(&baseline, &candidate, evidence, 0.05).unwrap();
            assert!(readings[0].ratio.high < 0.9, "{:?}", readings[0]);
            assert!(
                readings.iter().all(|r| r.verdict == Verdict::Inconclusive),
                "{evidence:?} {readings:?}"
            );
        }
    }

    #[test]
    fn metrics_some_run_lacks_are_left_out() {
        let baseline = runs(&[100_000.0, 98_000.0, 101_000.0]);
        let mut candidate = baseline.clone();
        candidate[1].server_cpu_us_per_request = None;
        let readings = compare_runs(&baseline, &candidate, Evidence::SameRunPaired, 0.05).unwrap();
        let metrics: Vec<Metric> = readings.iter().map(|r| r.metric).collect();
        assert_eq!(metrics, [Metric::Throughput, Metric::P50, Metric::P99]);
    }

    #[test]
    fn paired_evidence_needs_matching_repeat_counts() {
        let baseline = runs(&[1.0, 2.0, 3.0]);
        let candidate = runs(&[1.0, 2.0]);
        assert!(compare_runs(&baseline, &candidate, Evidence::SameRunPaired, 0.05).is_err());
        assert!(compare_runs(&baseline, &candidate, Evidence::StoredBaseline, 0.05).is_ok());
    }
}
