//! The measuring schedule of `harness compare`: rounds of baseline and candidate runs, either
//! side by side (both servers at once, sharing the same cores, started A B then B A) or
//! alternating (A B, then B A, ...), and `--until-confident`, which adds rounds while any verdict
//! is inconclusive, up to a cap.
//!
//! Where it sits: `compare::run` builds a [`Plan`] and hands in a function that runs one point of
//! a group of sides together (real servers and loadgens, via the runner) -> **this schedule** ->
//! per-point runs and readings (`analysis.rs`) -> the report. Taking the run function as a
//! parameter keeps the schedule testable with synthetic figures, without processes.

use super::analysis::{compare_runs, Evidence, MetricComparison, RunFigures};
use crate::stats::{StatsError, Verdict};

/// Which server a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Baseline,
    Candidate,
}

/// How the two servers' runs of a round are placed in time.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// Both servers run at the same time on the same server cores, each driven by its own
    /// loadgen with the same settings on the same loadgen cores. Whatever else the machine does
    /// during the window slows both alike, so the per-round ratios are tight even on a noisy
    /// machine; the absolute figures are each server's share of the machine, not what it does
    /// alone.
    SideBySide,
    /// One server after the other (A B, then B A, ...), each alone on the machine: absolute
    /// figures, but every change in the machine between two runs is noise in the ratio.
    Alternating,
}

impl Schedule {
    /// The name on the command line, in spec files and in results.
    pub fn as_str(self) -> &'static str {
        match self {
            Schedule::SideBySide => "side-by-side",
            Schedule::Alternating => "alternating",
        }
    }
}

/// How many runs to take and how to read them.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// How a round's two runs are placed in time (a stored baseline runs only the candidate).
    pub schedule: Schedule,
    /// Rounds before the first reading (each round runs every point once per side).
    pub repeats: usize,
    /// Add rounds (two at a time, keeping the A B / B A balance) while any verdict is
    /// inconclusive and none has regressed (a regressed metric already fails the gate).
    pub until_confident: bool,
    /// The cap on rounds with `until_confident`.
    pub max_repeats: usize,
    /// The gate's threshold as a fraction (0.05 = 5%).
    pub threshold: f64,
    /// How many times per session a round with a failed run is run again before the failure
    /// ends the session. A shared machine can stall a run outright (nothing completes in the
    /// window); a broken server fails every retry too, so it still ends as an error.
    pub round_retries: usize,
}

/// The runs and readings of one point.
#[derive(Debug, Clone, PartialEq)]
pub struct PointOutcome {
    pub baseline_runs: Vec<RunFigures>,
    pub candidate_runs: Vec<RunFigures>,
    pub metrics: Vec<MetricComparison>,
}

/// What a session measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Rounds taken (runs per side per point).
    pub rounds: usize,
    /// One entry per point, in the order given.
    pub points: Vec<PointOutcome>,
    /// True when `until_confident` hit `max_repeats` with a verdict still inconclusive.
    pub capped_while_inconclusive: bool,
    /// The failures whose rounds were run again (round index, error text).
    pub retried: Vec<(usize, String)>,
}

/// Runs the plan over `point_count` points.
///
/// `stored` holds a stored baseline's runs per point (then only the candidate is run and the
/// readings are unpaired); `None` runs both sides and pairs round `i` of each.
/// `run_group(sides, point_index, round)` runs the given sides at one point together (side by
/// side: at the same time, in that start order; alternating: always a single side) and returns
/// one figure set per side, in the same order.
pub fn run_session<E>(
    plan: &Plan,
    point_count: usize,
    stored: Option<&[Vec<RunFigures>]>,
    mut run_group: impl FnMut(&[Side], usize, usize) -> Result<Vec<RunFigures>, E>,
) -> Result<Outcome, E>
where
    E: From<StatsError> + std::fmt::Display,
{
    let mut baseline_runs: Vec<Vec<RunFigures>> = match stored {
        Some(runs) => runs.to_vec(),
        None => vec![Vec::new(); point_count],
    };
    let mut candidate_runs: Vec<Vec<RunFigures>> = vec![Vec::new(); point_count];
    let evidence = if stored.is_some() {
        Evidence::StoredBaseline
    } else {
        Evidence::SameRunPaired
    };
    let mut rounds = 0;
    let mut target = plan.repeats;
    let mut retried = Vec::new();
    loop {
        while rounds < target {
            // A round is kept whole or not at all, so pair `i` of every point stays aligned.
            let round = (0..point_count)
                .map(|point| {
                    let mut runs = Vec::with_capacity(2);
                    for group in round_groups(rounds, stored.is_some(), plan.schedule) {
                        let figures = run_group(&group, point, rounds)?;
                        runs.extend(group.into_iter().zip(figures));
                    }
                    Ok(runs)
                })
                .collect::<Result<Vec<_>, E>>();
            let round = match round {
                Ok(round) => round,
                Err(error) if retried.len() < plan.round_retries => {
                    // `{:#}` keeps the cause chain of errors that have one (anyhow).
                    retried.push((rounds, format!("{error:#}")));
                    continue;
                }
                Err(error) => return Err(error),
            };
            for (point, runs) in round.into_iter().enumerate() {
                for (side, figures) in runs {
                    match side {
                        Side::Baseline => baseline_runs[point].push(figures),
                        Side::Candidate => candidate_runs[point].push(figures),
                    }
                }
            }
            rounds += 1;
        }
        let readings = (0..point_count)
            .map(|point| {
                compare_runs(
                    &baseline_runs[point],
                    &candidate_runs[point],
                    evidence,
                    plan.threshold,
                )
            })
            .collect::<Result<Vec<_>, StatsError>>()?;
        let inconclusive = readings
            .iter()
            .flatten()
            .any(|m| m.verdict == Verdict::Inconclusive);
        // Once a metric has regressed the gate has failed; more rounds would only refine the
        // other readings, and CI time is better spent elsewhere.
        let failed = readings
            .iter()
            .flatten()
            .any(|m| m.verdict == Verdict::Regressed);
        if !plan.until_confident || !inconclusive || failed || rounds >= plan.max_repeats {
            let points = readings
                .into_iter()
                .zip(baseline_runs)
                .zip(candidate_runs)
                .map(|((metrics, baseline_runs), candidate_runs)| PointOutcome {
                    baseline_runs,
                    candidate_runs,
                    metrics,
                })
                .collect();
            return Ok(Outcome {
                rounds,
                points,
                capped_while_inconclusive: plan.until_confident && inconclusive && !failed,
                retried,
            });
        }
        target = (rounds + 2).min(plan.max_repeats);
    }
}

/// The groups of sides round `i` runs, in order. Round `i` puts A first when `i` is even and B
/// first when odd, so a linear drift over the session (alternating) or an edge of starting
/// first (side by side) weighs on both sides alike. Without a baseline to run, only the
/// candidate.
fn round_groups(round: usize, stored_baseline: bool, schedule: Schedule) -> Vec<Vec<Side>> {
    let order = match (stored_baseline, round % 2) {
        (true, _) => return vec![vec![Side::Candidate]],
        (false, 0) => [Side::Baseline, Side::Candidate],
        (false, _) => [Side::Candidate, Side::Baseline],
    };
    match schedule {
        Schedule::SideBySide => vec![order.to_vec()],
        Schedule::Alternating => order.iter().map(|&side| vec![side]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(rps: f64) -> RunFigures {
        RunFigures {
            throughput_rps: rps,
            p50_us: 50.0e6 / rps,
            p99_us: 100.0e6 / rps,
            server_cpu_us_per_request: None,
        }
    }

    fn plan(repeats: usize, until_confident: bool, max_repeats: usize) -> Plan {
        Plan {
            schedule: Schedule::Alternating,
            repeats,
            until_confident,
            max_repeats,
            threshold: 0.05,
            round_retries: 0,
        }
    }

    /// Runs each side of a group through `run_one`, one after the other.
    fn each<E>(
        mut run_one: impl FnMut(Side, usize, usize) -> Result<RunFigures, E>,
    ) -> impl FnMut(&[Side], usize, usize) -> Result<Vec<RunFigures>, E> {
        move |sides, point, round| {
            sides
                .iter()
                .map(|&side| run_one(side, point, round))
                .collect()
        }
    }

    #[test]
    fn side_by_side_rounds_run_both_sides_together_and_swap_who_starts() {
        let mut groups = Vec::new();
        let side_by_side = Plan {
            schedule: Schedule::SideBySide,
            ..plan(6, false, 6)
        };
        let outcome = run_session::<StatsError>(&side_by_side, 1, None, |sides, _, _| {
            groups.push(sides.to_vec());
            // The candidate is 10% slower in every round, whatever the order.
            Ok(sides
                .iter()
                .map(|side| match side {
                    Side::Baseline => figures(1000.0),
                    Side::Candidate => figures(900.0),
                })
                .collect())
        })
        .unwrap();
        use Side::{Baseline as A, Candidate as B};
        let expected: Vec<Vec<Side>> = [vec![A, B], vec![B, A]]
            .into_iter()
            .cycle()
            .take(6)
            .collect();
        assert_eq!(groups, expected);
        let point = &outcome.points[0];
        assert!(point
            .baseline_runs
            .iter()
            .all(|r| r.throughput_rps == 1000.0));
        assert!(point
            .candidate_runs
            .iter()
            .all(|r| r.throughput_rps == 900.0));
        assert_eq!(point.metrics[0].verdict, Verdict::Regressed);
    }

    #[test]
    fn rounds_alternate_a_b_then_b_a() {
        let mut order = Vec::new();
        let outcome = run_session::<StatsError>(
            &plan(4, false, 4),
            1,
            None,
            each(|side, _, round| {
                order.push(side);
                Ok(figures(1000.0 + round as f64))
            }),
        )
        .unwrap();
        use Side::{Baseline as A, Candidate as B};
        assert_eq!(order, vec![A, B, B, A, A, B, B, A]);
        assert_eq!(outcome.rounds, 4);
        assert_eq!(outcome.points[0].baseline_runs.len(), 4);
    }

    #[test]
    fn until_confident_adds_rounds_only_while_inconclusive_and_stops_at_the_cap() {
        // Noise of ±8% alternating per round makes the first 3 rounds inconclusive; identical
        // later rounds shrink the interval into "no change".
        let noisy = |_side: Side, _point: usize, round: usize| -> Result<RunFigures, StatsError> {
            Ok(figures(match (round, _side) {
                (0, Side::Candidate) => 1080.0,
                (1, Side::Candidate) => 920.0,
                (2, Side::Candidate) => 1050.0,
                _ => 1000.0,
            }))
        };
        let fixed = run_session(&plan(3, false, 20), 1, None, each(noisy)).unwrap();
        assert_eq!(fixed.rounds, 3);
        assert_eq!(fixed.points[0].metrics[0].verdict, Verdict::Inconclusive);

        let confident = run_session(&plan(3, true, 20), 1, None, each(noisy)).unwrap();
        assert!(
            confident.rounds > 3 && confident.rounds < 20,
            "{}",
            confident.rounds
        );
        assert!(!confident.capped_while_inconclusive);
        assert!(confident.points[0]
            .metrics
            .iter()
            .all(|m| m.verdict == Verdict::NoChange));

        let capped = run_session(&plan(3, true, 4), 1, None, each(noisy)).unwrap();
        assert_eq!(capped.rounds, 4);
        assert!(capped.capped_while_inconclusive);
    }

    #[test]
    fn until_confident_stops_once_a_metric_has_regressed() {
        // Throughput 20% down in every round: regressed as soon as there are enough rounds to
        // say so (two at first, then two more at a time up to six), while the other metrics'
        // noise would keep them inconclusive for many rounds.
        let slower = |side: Side, _point: usize, round: usize| -> Result<RunFigures, StatsError> {
            let (rps, jitter) = match side {
                Side::Baseline => (1000.0, 1.0),
                Side::Candidate => (800.0, if round % 2 == 0 { 1.3 } else { 0.7 }),
            };
            Ok(RunFigures {
                p99_us: figures(rps).p99_us * jitter,
                ..figures(rps)
            })
        };
        let outcome = run_session(&plan(2, true, 20), 1, None, each(slower)).unwrap();
        assert_eq!(outcome.rounds, crate::stats::MIN_ROUNDS_FOR_VERDICT);
        assert!(!outcome.capped_while_inconclusive);
        let verdicts: Vec<Verdict> = outcome.points[0]
            .metrics
            .iter()
            .map(|m| m.verdict)
            .collect();
        assert_eq!(verdicts[0], Verdict::Regressed);
        assert!(verdicts.contains(&Verdict::Inconclusive), "{verdicts:?}");
    }

    #[test]
    fn a_stored_baseline_runs_only_the_candidate() {
        let stored = vec![[figures(1000.0), figures(990.0), figures(1010.0)].repeat(2)];
        let mut sides = Vec::new();
        let outcome = run_session::<StatsError>(
            &plan(6, false, 6),
            1,
            Some(&stored),
            each(|side, _, _| {
                sides.push(side);
                Ok(figures(800.0))
            }),
        )
        .unwrap();
        assert!(sides.iter().all(|s| *s == Side::Candidate));
        assert_eq!(sides.len(), 6);
        assert_eq!(outcome.points[0].metrics[0].verdict, Verdict::Regressed);
    }

    #[derive(Debug)]
    enum Failure {
        Server,
        Stats,
    }

    impl From<StatsError> for Failure {
        fn from(_: StatsError) -> Self {
            Failure::Stats
        }
    }

    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    #[test]
    fn a_failed_run_reruns_its_whole_round_while_retries_last() {
        let mut calls = Vec::new();
        let mut failures_left = 1;
        let retrying = Plan {
            round_retries: 1,
            ..plan(2, false, 2)
        };
        let outcome = run_session(
            &retrying,
            1,
            None,
            each(|side, _, round| {
                calls.push((round, side));
                // The candidate's first run of round 1 fails once.
                if round == 1 && side == Side::Candidate && failures_left > 0 {
                    failures_left -= 1;
                    return Err(Failure::Server);
                }
                Ok(figures(1000.0 + round as f64))
            }),
        )
        .unwrap();
        assert_eq!(outcome.rounds, 2);
        assert_eq!(outcome.retried, vec![(1, "Server".to_string())]);
        // Pairs stay aligned: one baseline and one candidate run per kept round.
        assert_eq!(outcome.points[0].baseline_runs.len(), 2);
        assert_eq!(outcome.points[0].candidate_runs.len(), 2);
        use Side::{Baseline as A, Candidate as B};
        assert_eq!(calls, vec![(0, A), (0, B), (1, B), (1, B), (1, A)]);

        // A server that always fails uses the retries up, then ends the session.
        let result = run_session(
            &retrying,
            1,
            None,
            each(|_, _, _| Err::<RunFigures, _>(Failure::Server)),
        );
        assert!(matches!(result, Err(Failure::Server)));
    }

    #[test]
    fn a_failed_run_stops_the_session() {
        let result = run_session(
            &plan(3, false, 3),
            2,
            None,
            each(|_, point, round| {
                if point == 1 && round == 1 {
                    Err(Failure::Server)
                } else {
                    Ok(figures(1000.0))
                }
            }),
        );
        assert!(matches!(result, Err(Failure::Server)));
    }
}
