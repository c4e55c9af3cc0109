//! A least-squares line through a series, with the 95% confidence interval of its slope
//! (Student's t on n - 2 degrees of freedom): how the soak says whether memory grows, and how
//! sure it is.
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

    #[test]
    fn too_few_points_or_no_spread() {
        assert!(slope(&[(0.0, 1.0), (1.0, 2.0)]).is_none());
        assert!(slope(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]).is_none());
    }
}
