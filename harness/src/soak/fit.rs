//! A least-squares line through a series, with the 95% confidence interval of its slope
//! (Student's t on n - 2 degrees of freedom): how the soak says whether memory grows, and how
//! sure it is.
//!
//! RSS sampled every second is not a series of independent points: a server that fills and
//! frees buffers in cycles (connections filling their output, then timed out together) draws a
//! saw-tooth, and neighbouring samples are correlated. A t interval over the raw samples then
//! claims a precision it does not have (n counts seconds, not independent observations), in both
//! directions: a saw-tooth inflates or shrinks the fitted slope by chance while the interval
//! stays narrow. [`batched_slope`] is the method of batch means: the window is cut into
//! [`BATCHES`] equal spans, each span's mean stands for it, and the line is fitted through those
//! means with t on batches - 2 degrees of freedom. A cycle shorter than a batch averages out
//! inside it; a real trend (a leak) moves every batch mean and still gives a narrow interval
//! around a large slope, so the check can still fail.
//!
//! Where it sits: samples (`sampler.rs`) -> **fit** -> verdict (`verdict.rs`).

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// A fitted slope and its 95% interval, in units of y per unit of x.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SlopeFit {
    pub slope: f64,
    pub low: f64,
    pub high: f64,
    /// Points fitted.
    pub n: u64,
}

/// Batches the fit of [`batched_slope`] uses (fewer when there are fewer points).
pub const BATCHES: usize = 10;

/// The method of batch means: cut `points` (sorted by x) into at most [`BATCHES`] spans of
/// equal x-length, fit a line through each non-empty span's mean point. `n` of the result counts
/// batches. `None` with fewer than 3 non-empty batches.
pub fn batched_slope(points: &[(f64, f64)]) -> Option<SlopeFit> {
    let (first, last) = (points.first()?.0, points.last()?.0);
    let batches = BATCHES.min(points.len());
    let span = (last - first) / batches as f64;
    if span <= 0.0 {
        return None;
    }
    let mut sums = vec![(0.0, 0.0, 0usize); batches];
    for &(x, y) in points {
        let index = (((x - first) / span) as usize).min(batches - 1);
        let sum = &mut sums[index];
        sum.0 += x;
        sum.1 += y;
        sum.2 += 1;
    }
    let means: Vec<(f64, f64)> = sums
        .into_iter()
        .filter(|s| s.2 > 0)
        .map(|(x, y, n)| (x / n as f64, y / n as f64))
        .collect();
    slope(&means)
}

/// Fit y = a + b x; `None` with fewer than 3 points or no spread in x.
pub fn slope(points: &[(f64, f64)]) -> Option<SlopeFit> {
    let n = points.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / nf;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / nf;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let b = sxy / sxx;
    let a = mean_y - b * mean_x;
    let sse: f64 = points.iter().map(|p| (p.1 - a - b * p.0).powi(2)).sum();
    let se = (sse / (nf - 2.0) / sxx).sqrt();
    let t = StudentsT::new(0.0, 1.0, nf - 2.0).ok()?.inverse_cdf(0.975);
    Some(SlopeFit {
        slope: b,
        low: b - t * se,
        high: b + t * se,
        n: n as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_line_has_a_zero_width_interval() {
        let points: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 + 2.0 * i as f64)).collect();
        let fit = slope(&points).unwrap();
        assert!((fit.slope - 2.0).abs() < 1e-9);
        assert!((fit.high - fit.low).abs() < 1e-6);
    }

    #[test]
    fn noise_widens_the_interval_around_the_slope() {
        let points: Vec<(f64, f64)> = (0..20)
            .map(|i| {
                (
                    i as f64,
                    0.5 * i as f64 + if i % 2 == 0 { 1.0 } else { -1.0 },
                )
            })
            .collect();
        let fit = slope(&points).unwrap();
        assert!(fit.low < 0.5 && 0.5 < fit.high, "{fit:?}");
        assert!(fit.low > 0.3 && fit.high < 0.7, "{fit:?}");
    }

    /// RSS of a server filling 40 MiB of buffers every 34 s and freeing them, sampled every
    /// second for four minutes, in MiB against minutes, plus `trend` MiB per minute.
    fn saw_tooth(trend: f64) -> Vec<(f64, f64)> {
        (0..240)
            .map(|s| {
                let t = s as f64;
                let phase = (t % 34.0) / 34.0;
                (t / 60.0, 70.0 + 40.0 * phase + trend * t / 60.0)
            })
            .collect()
    }

    #[test]
    fn batch_means_see_a_leak_through_a_saw_tooth() {
        let fit = batched_slope(&saw_tooth(20.0)).unwrap();
        assert_eq!(fit.n, BATCHES as u64);
        assert!(
            fit.low > 1.0,
            "a 20 MiB/min leak must fail a 1 MiB/min limit: {fit:?}"
        );
        let flat = batched_slope(&saw_tooth(0.0)).unwrap();
        assert!(flat.low < 0.0 && 0.0 < flat.high, "{flat:?}");
        // A steady series (buffers bounded, no cycle) passes.
        let steady: Vec<(f64, f64)> = (0..240)
            .map(|s| (s as f64 / 60.0, 80.0 + if s % 2 == 0 { 0.3 } else { -0.3 }))
            .collect();
        let fit = batched_slope(&steady).unwrap();
        assert!(fit.high < 1.0, "{fit:?}");
    }

    #[test]
    fn raw_samples_overstate_their_precision_on_a_saw_tooth() {
        // The honest interval (batch means) is wider than the one that counts every second
        // as independent.
        let points = saw_tooth(0.0);
        let raw = slope(&points).unwrap();
        let batched = batched_slope(&points).unwrap();
        assert!(
            batched.high - batched.low > raw.high - raw.low,
            "{raw:?} {batched:?}"
        );
    }

    #[test]
    fn batches_need_three_spans() {
        assert!(batched_slope(&[(0.0, 1.0), (1.0, 2.0)]).is_none());
        assert!(batched_slope(&[(0.0, 1.0), (0.5, 1.5), (1.0, 2.0)]).is_some());
        assert!(batched_slope(&[]).is_none());
    }

    #[test]
    fn too_few_points_or_no_spread() {
        assert!(slope(&[(0.0, 1.0), (1.0, 2.0)]).is_none());
        assert!(slope(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]).is_none());
    }
}
