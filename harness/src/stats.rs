//! Statistics behind every figure the harness reports: medians and percentiles of repeated runs,
//! their 95% intervals, the ratio of a candidate to a baseline with its interval, and the verdict
//! of the regression gate.
//!
//! Where it sits: runs (processes) -> loadgen summaries -> **these estimates** -> sweep summaries
//! (`results.json`) and `harness compare` tables. Everything here is plain functions over `&[f64]`
//! so it is tested on synthetic samples with known answers.
//!
//! Two kinds of ratio are offered, because two kinds of evidence exist:
//! - [`paired_ratio_ci`]: baseline and candidate ran in the same session, side by side or
//!   interleaved (A B B A), so repeat `i` of each saw the same machine state. The per-pair log
//!   ratios cancel that drift; the interval is a Student-t interval on their mean (a paired
//!   t-test on log ratios). A percentile bootstrap is *not* used here: at the 4–12 repeats a CI
//!   job can afford it undercovers badly (it uses the normal quantile and the biased spread;
//!   about 85% real coverage at n = 5), which is exactly what makes benchmark gates cry wolf.
//! - [`ratio_of_medians_ci`]: the two samples come from different runs (a stored baseline), so
//!   nothing pairs them; the interval is a bootstrap of the ratio of medians. It is weaker
//!   evidence and `compare` labels it so.
//!
//! Bootstraps use a seeded [`SmallRng`], so the same samples always give the same interval. The
//! Student's t distribution comes from `statrs`; only what no crate offers is written here (the
//! paired log-ratio interval, the bootstraps, the gate's verdict and its minimum of rounds).
//!
//! **Why a decisive verdict needs [`MIN_ROUNDS_FOR_VERDICT`] rounds.** The t interval is exact
//! only when the per-round log ratios are independent draws of one normal distribution. A loaded
//! machine breaks that (a stalled second, a compile starting half-way), and with few rounds the
//! interval's width rests on a spread estimated from one or two differences: two rounds that
//! happen to agree give a narrow interval by luck (a gev-echo self-comparison of 2 rounds read
//! 0.870 [0.847, 0.893], "regressed"). The distribution-free floor is the sign test: if *every*
//! round moved the same way, the two-sided p-value is 2 · 2^-n, which drops below 5% only at
//! n = 6 (2/64 = 3.1%; n = 5 gives 6.3%). With fewer rounds no assumption-free reading can say
//! 95%, so [`supported_verdict`] turns `regressed` and `improved` into `inconclusive` below six.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};
use std::fmt;

/// Why a statistic could not be computed from the given samples.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("no samples to summarise")]
    Empty,
    #[error("sample {index} is not a finite number ({value})")]
    NotFinite { index: usize, value: f64 },
    #[error("sample {index} is {value}, but a ratio needs positive values")]
    NotPositive { index: usize, value: f64 },
    #[error("percentile {0} is outside 0..=100")]
    BadPercentile(f64),
    #[error("confidence {0} is outside the open interval (0, 1)")]
    BadConfidence(f64),
    #[error("paired samples differ in length: {baseline} baseline vs {candidate} candidate")]
    LengthMismatch { baseline: usize, candidate: usize },
    #[error("a paired interval needs at least 2 pairs, got {0}")]
    TooFewPairs(usize),
    #[error("a bootstrap needs at least 1 resample")]
    NoResamples,
}

/// A point estimate with its confidence interval (`low <= point <= high`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub point: f64,
    pub low: f64,
    pub high: f64,
    /// The interval's nominal coverage, e.g. 0.95.
    pub confidence: f64,
}

impl Estimate {
    /// Whether `value` lies inside the interval (bounds included).
    pub fn contains(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }
}

/// How a bootstrap is run. The defaults give stable 95% intervals in a few milliseconds for the
/// sample sizes the harness produces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapOptions {
    /// Number of resamples (default 10 000).
    pub resamples: usize,
    /// Nominal coverage of the interval (default 0.95).
    pub confidence: f64,
    /// RNG seed; a fixed seed makes the interval a pure function of the samples.
    pub seed: u64,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        BootstrapOptions {
            resamples: 10_000,
            confidence: 0.95,
            seed: 0x6765_765f_7374_6174, // "gev_stat"
        }
    }
}

/// Which way a metric gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Throughput: a lower candidate/baseline ratio is a regression.
    HigherIsBetter,
    /// Latency: a higher candidate/baseline ratio is a regression.
    LowerIsBetter,
}

/// The gate's reading of one ratio interval against a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// The whole interval is past the threshold in the bad direction.
    #[serde(rename = "regressed")]
    Regressed,
    /// The whole interval is past the threshold in the good direction.
    #[serde(rename = "improved")]
    Improved,
    /// The whole interval lies within ±threshold.
    #[serde(rename = "no change")]
    NoChange,
    /// The interval straddles a threshold: more repeats are needed to say.
    #[serde(rename = "inconclusive")]
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::NoChange => "no change",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads a candidate/baseline ratio interval against `threshold` (a fraction: 0.05 = 5%).
///
/// `regressed` only when the whole interval is past `1 - threshold` (throughput) or
/// `1 + threshold` (latency); `improved` only when it is wholly past the other bound; `no change`
/// when it lies wholly within `[1 - threshold, 1 + threshold]`; otherwise `inconclusive`.
pub fn verdict(ratio: &Estimate, direction: Direction, threshold: f64) -> Verdict {
    let lower_bound = 1.0 - threshold;
    let upper_bound = 1.0 + threshold;
    let wholly_below = ratio.high < lower_bound;
    let wholly_above = ratio.low > upper_bound;
    let (worse, better) = match direction {
        Direction::HigherIsBetter => (wholly_below, wholly_above),
        Direction::LowerIsBetter => (wholly_above, wholly_below),
    };
    if worse {
        Verdict::Regressed
    } else if better {
        Verdict::Improved
    } else if ratio.low >= lower_bound && ratio.high <= upper_bound {
        Verdict::NoChange
    } else {
        Verdict::Inconclusive
    }
}

/// The fewest rounds (pairs, or runs per side of an unpaired comparison) from which the gate may
/// say `regressed` or `improved`: below it even unanimous rounds fail a two-sided 5% sign test
/// (see the module docs).
pub const MIN_ROUNDS_FOR_VERDICT: usize = 6;

/// `verdict` as the evidence of `rounds` rounds can support it: `regressed` and `improved` from
/// fewer than [`MIN_ROUNDS_FOR_VERDICT`] rounds become `inconclusive` (more rounds are needed to
/// say). `no change` and `inconclusive` pass through: neither fails nor passes a gate by luck.
pub fn supported_verdict(verdict: Verdict, rounds: usize) -> Verdict {
    match verdict {
        Verdict::Regressed | Verdict::Improved if rounds < MIN_ROUNDS_FOR_VERDICT => {
            Verdict::Inconclusive
        }
        other => other,
    }
}

/// Two-sided p-value of the exact sign test when all `rounds` rounds moved the same way:
/// 2 · 2^-rounds (capped at 1). The smallest p-value `rounds` rounds can ever give without
/// assuming a distribution.
pub fn unanimous_sign_test_p(rounds: usize) -> f64 {
    (2.0 * 0.5_f64.powi(rounds.min(1074) as i32)).min(1.0)
}

/// The median (mean of the two middle values for an even count).
pub fn median(samples: &[f64]) -> Result<f64, StatsError> {
    percentile(samples, 50.0)
}

/// The `p`-th percentile (0..=100), interpolating linearly between order statistics (the
/// "type 7" definition of R and NumPy's default).
pub fn percentile(samples: &[f64], p: f64) -> Result<f64, StatsError> {
    if !(0.0..=100.0).contains(&p) {
        return Err(StatsError::BadPercentile(p));
    }
    check_finite(samples)?;
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    Ok(percentile_of_sorted(&sorted, p))
}

/// A bootstrap (percentile method) interval for the median of `samples`.
pub fn bootstrap_median_ci(
    samples: &[f64],
    options: &BootstrapOptions,
) -> Result<Estimate, StatsError> {
    check_options(options)?;
    let point = median(samples)?;
    let mut rng = SmallRng::seed_from_u64(options.seed);
    let mut scratch = Vec::with_capacity(samples.len());
    let medians: Vec<f64> = (0..options.resamples)
        .map(|_| resampled_median(samples, &mut rng, &mut scratch))
        .collect();
    Ok(percentile_interval(point, medians, options.confidence))
}

/// The ratio `median(candidate) / median(baseline)` of two independent samples, with a bootstrap
/// (percentile method) interval that resamples each side separately.
pub fn ratio_of_medians_ci(
    baseline: &[f64],
    candidate: &[f64],
    options: &BootstrapOptions,
) -> Result<Estimate, StatsError> {
    check_options(options)?;
    check_positive(baseline)?;
    check_positive(candidate)?;
    let point = median(candidate)? / median(baseline)?;
    let mut rng = SmallRng::seed_from_u64(options.seed);
    let mut scratch = Vec::with_capacity(baseline.len().max(candidate.len()));
    let ratios: Vec<f64> = (0..options.resamples)
        .map(|_| {
            let base = resampled_median(baseline, &mut rng, &mut scratch);
            let cand = resampled_median(candidate, &mut rng, &mut scratch);
            cand / base
        })
        .collect();
    Ok(percentile_interval(point, ratios, options.confidence))
}

/// The ratio candidate/baseline of paired repeats (`baseline[i]` and `candidate[i]` ran next to
/// each other), as the geometric mean of the per-pair ratios with a Student-t interval on the
/// mean log ratio.
pub fn paired_ratio_ci(
    baseline: &[f64],
    candidate: &[f64],
    confidence: f64,
) -> Result<Estimate, StatsError> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(StatsError::BadConfidence(confidence));
    }
    if baseline.len() != candidate.len() {
        return Err(StatsError::LengthMismatch {
            baseline: baseline.len(),
            candidate: candidate.len(),
        });
    }
    check_positive(baseline)?;
    check_positive(candidate)?;
    let n = baseline.len();
    if n < 2 {
        return Err(StatsError::TooFewPairs(n));
    }
    let log_ratios: Vec<f64> = baseline
        .iter()
        .zip(candidate)
        .map(|(b, c)| (c / b).ln())
        .collect();
    let count = n as f64;
    let mean = log_ratios.iter().sum::<f64>() / count;
    let variance = log_ratios.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (count - 1.0);
    let standard_error = (variance / count).sqrt();
    let t = student_t_quantile(0.5 + confidence / 2.0, count - 1.0);
    let half_width = t * standard_error;
    Ok(Estimate {
        point: mean.exp(),
        low: (mean - half_width).exp(),
        high: (mean + half_width).exp(),
        confidence,
    })
}

/// The `probability` quantile of Student's t distribution with `degrees_of_freedom` (> 0), for
/// `probability` in (0, 1), from `statrs` (its inverse CDF is accurate to ~1e-9 here). Returns
/// NaN for arguments outside those ranges, which no caller in this crate passes.
pub fn student_t_quantile(probability: f64, degrees_of_freedom: f64) -> f64 {
    match StudentsT::new(0.0, 1.0, degrees_of_freedom) {
        Ok(distribution) if probability > 0.0 && probability < 1.0 => {
            distribution.inverse_cdf(probability)
        }
        _ => f64::NAN,
    }
}

fn resampled_median(samples: &[f64], rng: &mut SmallRng, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend((0..samples.len()).map(|_| samples[rng.random_range(0..samples.len())]));
    scratch.sort_by(f64::total_cmp);
    percentile_of_sorted(scratch, 50.0)
}

/// The central `confidence` interval of the bootstrap replicates, around `point`.
fn percentile_interval(point: f64, mut replicates: Vec<f64>, confidence: f64) -> Estimate {
    replicates.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0 * 100.0;
    let low = percentile_of_sorted(&replicates, tail);
    let high = percentile_of_sorted(&replicates, 100.0 - tail);
    Estimate {
        point,
        // The point estimate of a skewed statistic can fall just outside a percentile interval
        // (e.g. a median of two values); keep the interval a superset so `low <= point <= high`.
        low: low.min(point),
        high: high.max(point),
        confidence,
    }
}

fn percentile_of_sorted(sorted: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let below = rank.floor() as usize;
    let above = rank.ceil() as usize;
    let fraction = rank - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

fn check_finite(samples: &[f64]) -> Result<(), StatsError> {
    if samples.is_empty() {
        return Err(StatsError::Empty);
    }
    match samples.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(StatsError::NotFinite {
            index,
            value: samples[index],
        }),
        None => Ok(()),
    }
}

fn check_positive(samples: &[f64]) -> Result<(), StatsError> {
    check_finite(samples)?;
    match samples.iter().position(|v| *v <= 0.0) {
        Some(index) => Err(StatsError::NotPositive {
            index,
            value: samples[index],
        }),
        None => Ok(()),
    }
}

fn check_options(options: &BootstrapOptions) -> Result<(), StatsError> {
    if options.resamples == 0 {
        return Err(StatsError::NoResamples);
    }
    if !(options.confidence > 0.0 && options.confidence < 1.0) {
        return Err(StatsError::BadConfidence(options.confidence));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A standard normal draw (Box–Muller), for synthetic samples with known distributions.
    fn normal(rng: &mut SmallRng) -> f64 {
        let u1: f64 = rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = rng.random_range(0.0..1.0);
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    fn estimate(low: f64, high: f64) -> Estimate {
        Estimate {
            point: 0.5 * (low + high),
            low,
            high,
            confidence: 0.95,
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]).unwrap(), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]).unwrap(), 2.5);
        assert_eq!(median(&[7.0]).unwrap(), 7.0);
    }

    #[test]
    fn percentile_interpolates_between_order_statistics() {
        let samples: Vec<f64> = (1..=5).map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.0).unwrap(), 1.0);
        assert_eq!(percentile(&samples, 100.0).unwrap(), 5.0);
        assert_eq!(percentile(&samples, 25.0).unwrap(), 2.0);
        assert!((percentile(&samples, 90.0).unwrap() - 4.6).abs() < 1e-12);
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert_eq!(median(&[]), Err(StatsError::Empty));
        assert!(matches!(
            median(&[1.0, f64::NAN]),
            Err(StatsError::NotFinite { index: 1, .. })
        ));
        assert_eq!(
            percentile(&[1.0], 101.0),
            Err(StatsError::BadPercentile(101.0))
        );
        assert_eq!(
            paired_ratio_ci(&[1.0, 2.0], &[1.0], 0.95),
            Err(StatsError::LengthMismatch {
                baseline: 2,
                candidate: 1
            })
        );
        assert_eq!(
            paired_ratio_ci(&[1.0], &[1.0], 0.95),
            Err(StatsError::TooFewPairs(1))
        );
        assert!(matches!(
            paired_ratio_ci(&[1.0, 0.0], &[1.0, 1.0], 0.95),
            Err(StatsError::NotPositive { index: 1, .. })
        ));
        let no_resamples = BootstrapOptions {
            resamples: 0,
            ..BootstrapOptions::default()
        };
        assert_eq!(
            bootstrap_median_ci(&[1.0], &no_resamples),
            Err(StatsError::NoResamples)
        );
    }

    #[test]
    fn t_quantiles_match_published_tables() {
        // Two-sided 95% critical values of Student's t.
        for (df, expected) in [
            (1.0, 12.7062),
            (2.0, 4.3027),
            (4.0, 2.7764),
            (10.0, 2.2281),
            (30.0, 2.0423),
            (1e6, 1.9600),
        ] {
            let t = student_t_quantile(0.975, df);
            assert!((t - expected).abs() < 1e-3, "df {df}: {t} vs {expected}");
        }
        assert!((student_t_quantile(0.995, 5.0) - 4.0321).abs() < 1e-3);
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_the_median() {
        let samples = [101.0, 98.0, 103.0, 99.0, 100.0, 97.0, 102.0];
        let options = BootstrapOptions::default();
        let first = bootstrap_median_ci(&samples, &options).unwrap();
        let second = bootstrap_median_ci(&samples, &options).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.point, 100.0);
        assert!(first.low < 100.0 && first.high > 100.0, "{first:?}");
        assert!(first.low >= 97.0 && first.high <= 103.0, "{first:?}");
    }

    #[test]
    fn identical_samples_give_a_zero_width_interval() {
        let samples = [5.0; 8];
        let ci = bootstrap_median_ci(&samples, &BootstrapOptions::default()).unwrap();
        assert_eq!((ci.low, ci.point, ci.high), (5.0, 5.0, 5.0));
    }

    #[test]
    fn bootstrap_median_ci_covers_the_true_median_about_95_percent_of_the_time() {
        // Normal(100, 10), n = 40: the true median is 100.
        let trials = 400;
        let options = BootstrapOptions {
            resamples: 2_000,
            ..BootstrapOptions::default()
        };
        let mut covered = 0;
        for seed in 0..trials {
            let mut rng = SmallRng::seed_from_u64(seed);
            let samples: Vec<f64> = (0..40).map(|_| 100.0 + 10.0 * normal(&mut rng)).collect();
            let ci = bootstrap_median_ci(&samples, &BootstrapOptions { seed, ..options }).unwrap();
            covered += usize::from(ci.contains(100.0));
        }
        let coverage = covered as f64 / trials as f64;
        assert!((0.90..=0.99).contains(&coverage), "coverage {coverage}");
    }

    #[test]
    fn paired_ratio_ci_covers_the_true_ratio_about_95_percent_of_the_time() {
        // Six interleaved pairs: a shared per-pair machine state (drift, which pairing cancels)
        // times independent 3% noise on each run; the true ratio is 0.9.
        let trials = 2_000;
        let mut covered = 0;
        for seed in 0..trials {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut baseline = Vec::new();
            let mut candidate = Vec::new();
            for _ in 0..6 {
                let machine = (0.2 * normal(&mut rng)).exp();
                baseline.push(1000.0 * machine * (0.03 * normal(&mut rng)).exp());
                candidate.push(900.0 * machine * (0.03 * normal(&mut rng)).exp());
            }
            let ci = paired_ratio_ci(&baseline, &candidate, 0.95).unwrap();
            covered += usize::from(ci.contains(0.9));
        }
        let coverage = covered as f64 / trials as f64;
        assert!((0.93..=0.97).contains(&coverage), "coverage {coverage}");
    }

    #[test]
    fn identical_paired_samples_are_no_change() {
        let runs = [1000.0, 1100.0, 950.0, 1020.0, 990.0];
        let ci = paired_ratio_ci(&runs, &runs, 0.95).unwrap();
        assert_eq!((ci.low, ci.point, ci.high), (1.0, 1.0, 1.0));
        assert_eq!(
            verdict(&ci, Direction::HigherIsBetter, 0.05),
            Verdict::NoChange
        );
        assert_eq!(
            verdict(&ci, Direction::LowerIsBetter, 0.05),
            Verdict::NoChange
        );
    }

    #[test]
    fn a_clean_20_percent_throughput_drop_is_regressed() {
        let mut rng = SmallRng::seed_from_u64(7);
        let baseline: Vec<f64> = (0..6)
            .map(|_| 1000.0 * (1.0 + 0.01 * normal(&mut rng)))
            .collect();
        let candidate: Vec<f64> = (0..6)
            .map(|_| 800.0 * (1.0 + 0.01 * normal(&mut rng)))
            .collect();
        let paired = paired_ratio_ci(&baseline, &candidate, 0.95).unwrap();
        assert!((paired.point - 0.8).abs() < 0.02, "{paired:?}");
        assert_eq!(
            verdict(&paired, Direction::HigherIsBetter, 0.10),
            Verdict::Regressed
        );
        let independent =
            ratio_of_medians_ci(&baseline, &candidate, &BootstrapOptions::default()).unwrap();
        assert_eq!(
            verdict(&independent, Direction::HigherIsBetter, 0.10),
            Verdict::Regressed
        );
        // The same ratio read as a latency (lower is better) is an improvement.
        assert_eq!(
            verdict(&paired, Direction::LowerIsBetter, 0.10),
            Verdict::Improved
        );
    }

    #[test]
    fn wide_noise_is_inconclusive() {
        let mut rng = SmallRng::seed_from_u64(11);
        let baseline: Vec<f64> = (0..5)
            .map(|_| 1000.0 * (0.3 * normal(&mut rng)).exp())
            .collect();
        let candidate: Vec<f64> = (0..5)
            .map(|_| 950.0 * (0.3 * normal(&mut rng)).exp())
            .collect();
        let paired = paired_ratio_ci(&baseline, &candidate, 0.95).unwrap();
        assert_eq!(
            verdict(&paired, Direction::HigherIsBetter, 0.10),
            Verdict::Inconclusive,
            "{paired:?}"
        );
        let independent =
            ratio_of_medians_ci(&baseline, &candidate, &BootstrapOptions::default()).unwrap();
        assert_eq!(
            verdict(&independent, Direction::HigherIsBetter, 0.10),
            Verdict::Inconclusive,
            "{independent:?}"
        );
    }

    #[test]
    fn self_comparisons_under_heavy_drift_rarely_cross_the_threshold() {
        // The gate's promise on a noisy machine: 500 self-comparisons of 6 interleaved pairs,
        // with 20% shared drift and 4% per-run noise, give (almost) no regressed/improved.
        let mut false_verdicts = 0;
        for seed in 0..500 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut baseline = Vec::new();
            let mut candidate = Vec::new();
            for _ in 0..6 {
                let machine = (0.2 * normal(&mut rng)).exp();
                baseline.push(1000.0 * machine * (0.04 * normal(&mut rng)).exp());
                candidate.push(1000.0 * machine * (0.04 * normal(&mut rng)).exp());
            }
            let ci = paired_ratio_ci(&baseline, &candidate, 0.95).unwrap();
            let reading = verdict(&ci, Direction::HigherIsBetter, 0.05);
            false_verdicts +=
                usize::from(matches!(reading, Verdict::Regressed | Verdict::Improved));
        }
        assert!(
            false_verdicts <= 5,
            "{false_verdicts} false verdicts in 500"
        );
    }

    #[test]
    fn decisive_verdicts_need_the_rounds_a_sign_test_can_support() {
        // Six unanimous rounds are the first to reach 5% two-sided; five are not enough.
        assert!(unanimous_sign_test_p(MIN_ROUNDS_FOR_VERDICT) < 0.05);
        assert!(unanimous_sign_test_p(MIN_ROUNDS_FOR_VERDICT - 1) > 0.05);
        for rounds in 0..MIN_ROUNDS_FOR_VERDICT {
            for decisive in [Verdict::Regressed, Verdict::Improved] {
                assert_eq!(supported_verdict(decisive, rounds), Verdict::Inconclusive);
            }
            assert_eq!(
                supported_verdict(Verdict::NoChange, rounds),
                Verdict::NoChange
            );
        }
        assert_eq!(
            supported_verdict(Verdict::Regressed, MIN_ROUNDS_FOR_VERDICT),
            Verdict::Regressed
        );
        // The case that made the gate cry wolf: two rounds that agreed by luck.
        let lucky = Estimate {
            point: 0.870,
            low: 0.847,
            high: 0.893,
            confidence: 0.95,
        };
        let raw = verdict(&lucky, Direction::HigherIsBetter, 0.05);
        assert_eq!(raw, Verdict::Regressed);
        assert_eq!(supported_verdict(raw, 2), Verdict::Inconclusive);
    }

    #[test]
    fn verdict_bounds_per_direction() {
        let t = 0.10;
        let higher = Direction::HigherIsBetter;
        let lower = Direction::LowerIsBetter;
        // Wholly below 0.9.
        assert_eq!(
            verdict(&estimate(0.80, 0.89), higher, t),
            Verdict::Regressed
        );
        assert_eq!(verdict(&estimate(0.80, 0.89), lower, t), Verdict::Improved);
        // Wholly above 1.1.
        assert_eq!(verdict(&estimate(1.11, 1.30), higher, t), Verdict::Improved);
        assert_eq!(verdict(&estimate(1.11, 1.30), lower, t), Verdict::Regressed);
        // Within ±10% (bounds included).
        assert_eq!(verdict(&estimate(0.90, 1.10), higher, t), Verdict::NoChange);
        assert_eq!(verdict(&estimate(0.95, 1.02), lower, t), Verdict::NoChange);
        // Straddling a bound: not enough evidence either way.
        assert_eq!(
            verdict(&estimate(0.85, 0.95), higher, t),
            Verdict::Inconclusive
        );
        assert_eq!(
            verdict(&estimate(0.85, 1.15), lower, t),
            Verdict::Inconclusive
        );
        // An interval that touches the bound is not wholly past it.
        // [0.80, 0.90] neither lies wholly past 0.9 nor wholly within ±10%.
        assert_eq!(
            verdict(&estimate(0.80, 0.90), higher, t),
            Verdict::Inconclusive
        );
    }

    #[test]
    fn verdicts_render_as_the_gate_prints_them() {
        assert_eq!(Verdict::NoChange.to_string(), "no change");
        assert_eq!(
            serde_json::to_string(&Verdict::Regressed).unwrap(),
            "\"regressed\""
        );
        let parsed: Verdict = serde_json::from_str("\"no change\"").unwrap();
        assert_eq!(parsed, Verdict::NoChange);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn positive_samples(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<f64>> {
            proptest::collection::vec(1.0e-3..1.0e6_f64, len)
        }

        proptest! {
            #[test]
            fn percentiles_are_monotone_and_within_the_sample(
                samples in proptest::collection::vec(-1.0e6..1.0e6_f64, 1..50),
                p in 0.0..100.0_f64,
                q in 0.0..100.0_f64,
            ) {
                let (low_p, high_p) = if p <= q { (p, q) } else { (q, p) };
                let low = percentile(&samples, low_p).unwrap();
                let high = percentile(&samples, high_p).unwrap();
                let min = samples.iter().cloned().fold(f64::INFINITY, f64::min);
                let max = samples.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                prop_assert!(low <= high);
                prop_assert!(min <= low && high <= max);
            }

            #[test]
            fn paired_intervals_bracket_the_point_and_invert_when_sides_swap(
                baseline in positive_samples(2..12),
                scale in proptest::collection::vec(0.5..2.0_f64, 12),
            ) {
                let candidate: Vec<f64> =
                    baseline.iter().zip(&scale).map(|(b, s)| b * s).collect();
                let forward = paired_ratio_ci(&baseline, &candidate, 0.95).unwrap();
                let backward = paired_ratio_ci(&candidate, &baseline, 0.95).unwrap();
                prop_assert!(forward.low <= forward.point && forward.point <= forward.high);
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs());
                prop_assert!(close(forward.low, 1.0 / backward.high));
                prop_assert!(close(forward.high, 1.0 / backward.low));
            }

            #[test]
            fn bootstrap_intervals_bracket_the_median(samples in positive_samples(1..30)) {
                let options = BootstrapOptions { resamples: 200, ..BootstrapOptions::default() };
                let ci = bootstrap_median_ci(&samples, &options).unwrap();
                prop_assert_eq!(ci.point, median(&samples).unwrap());
                prop_assert!(ci.low <= ci.point && ci.point <= ci.high);
                let ratio = ratio_of_medians_ci(&samples, &samples, &options).unwrap();
                prop_assert_eq!(ratio.point, 1.0);
                prop_assert!(ratio.low <= 1.0 && 1.0 <= ratio.high);
            }

            #[test]
            fn a_verdict_flips_with_the_direction(
                low in 0.5..1.5_f64,
                width in 0.0..0.5_f64,
                threshold in 0.01..0.3_f64,
            ) {
                let ratio = Estimate { point: low + width / 2.0, low, high: low + width, confidence: 0.95 };
                let higher = verdict(&ratio, Direction::HigherIsBetter, threshold);
                let lower = verdict(&ratio, Direction::LowerIsBetter, threshold);
                let flipped = match higher {
                    Verdict::Regressed => Verdict::Improved,
                    Verdict::Improved => Verdict::Regressed,
                    other => other,
                };
                prop_assert_eq!(lower, flipped);
            }
        }
    }
}
