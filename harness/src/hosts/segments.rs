//! Exact division of a point's load among client hosts, as k6's execution segments do.
//!
//! Where it sits: multi-host run (`hosts::session`) -> **segments** -> one loadgen per client
//! host with its share. Each client host owns the segment `(a, b]` of `(0, 1]` given by the
//! cumulative weights; its share of an integer total `N` is `floor(N·b) - floor(N·a)`. The shares
//! telescope to `floor(N·1) - floor(N·0) = N` exactly, however the weights fall, and each share is
//! within one of the exact proportion `N·(b - a)`: no rounding is lost or counted twice.
//!
//! The offered rate is split the same way in integer milli-requests per second, weighted by the
//! connections each host received (so every connection offers the same rate, wherever it runs).

/// One client host's part of a point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    /// Connections this host opens.
    pub connections: u64,
    /// Requests per second it offers (`None` for a closed-loop point).
    pub rate: Option<f64>,
}

/// Why a load cannot be split.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SegmentError {
    #[error("no client hosts to split the load among")]
    NoHosts,
    #[error("every client host has weight 0")]
    ZeroWeight,
    #[error(
        "an offered rate of {rate} req/s is too small to give each of {hosts} client hosts with \
         connections at least 0.001 req/s"
    )]
    RateTooSmall { rate: f64, hosts: usize },
}

/// Splits `total` into parts proportional to `weights` whose sum is exactly `total`.
pub fn split(total: u64, weights: &[u64]) -> Result<Vec<u64>, SegmentError> {
    if weights.is_empty() {
        return Err(SegmentError::NoHosts);
    }
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if sum == 0 {
        return Err(SegmentError::ZeroWeight);
    }
    let mut parts = Vec::with_capacity(weights.len());
    let mut cumulative: u128 = 0;
    // floor(total * cumulative / sum) at the segment's start; u128 so no product overflows.
    let mut start: u128 = 0;
    for &weight in weights {
        cumulative += u128::from(weight);
        let end = u128::from(total) * cumulative / sum;
        parts.push((end - start) as u64);
        start = end;
    }
    Ok(parts)
}

/// Splits a point's connections by `weights` and its rate by the connections each host got.
/// Hosts whose share is zero connections get no rate and take no part in the point.
pub fn split_load(
    connections: u64,
    rate: Option<f64>,
    weights: &[u64],
) -> Result<Vec<Share>, SegmentError> {
    let conns = split(connections, weights)?;
    let rates = match rate {
        None => vec![None; conns.len()],
        Some(rate) => {
            let milli = (rate * 1000.0).round().max(0.0) as u64;
            let parts = split(milli, &conns)?;
            if conns.iter().zip(&parts).any(|(&c, &r)| c > 0 && r == 0) {
                return Err(SegmentError::RateTooSmall {
                    rate,
                    hosts: conns.iter().filter(|&&c| c > 0).count(),
                });
            }
            parts
                .into_iter()
                .map(|part| Some(part as f64 / 1000.0))
                .collect()
        }
    };
    Ok(conns
        .into_iter()
        .zip(rates)
        .map(|(connections, rate)| Share { connections, rate })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn equal_weights_differ_by_at_most_one() {
        assert_eq!(split(10, &[1, 1, 1]).unwrap(), vec![3, 3, 4]);
        assert_eq!(split(2, &[1, 1, 1]).unwrap(), vec![0, 1, 1]);
        assert_eq!(split(0, &[1, 1]).unwrap(), vec![0, 0]);
    }

    #[test]
    fn weights_and_errors() {
        assert_eq!(split(100, &[1, 3]).unwrap(), vec![25, 75]);
        assert_eq!(split(5, &[0, 1]).unwrap(), vec![0, 5]);
        assert_eq!(split(5, &[]), Err(SegmentError::NoHosts));
        assert_eq!(split(5, &[0, 0]), Err(SegmentError::ZeroWeight));
    }

    #[test]
    fn rates_follow_connections() {
        let shares = split_load(3, Some(3000.0), &[1, 1]).unwrap();
        assert_eq!(
            shares,
            vec![
                Share {
                    connections: 1,
                    rate: Some(1000.0)
                },
                Share {
                    connections: 2,
                    rate: Some(2000.0)
                }
            ]
        );
        // One connection, two hosts: the idle host offers nothing.
        let shares = split_load(1, Some(10.0), &[1, 1]).unwrap();
        assert_eq!(shares[0].connections + shares[1].connections, 1);
        assert!(shares
            .iter()
            .all(|s| (s.connections == 0) == (s.rate == Some(0.0))));
        assert!(matches!(
            split_load(4, Some(0.001), &[1, 1]),
            Err(SegmentError::RateTooSmall { .. })
        ));
    }

    proptest! {
        #[test]
        fn parts_add_up_exactly_and_stay_proportional(
            total in 0u64..=u64::MAX,
            weights in proptest::collection::vec(0u64..1_000_000, 1..16),
        ) {
            prop_assume!(weights.iter().any(|&w| w > 0));
            let parts = split(total, &weights).unwrap();
            prop_assert_eq!(parts.len(), weights.len());
            let sum: u128 = parts.iter().map(|&p| u128::from(p)).sum();
            prop_assert_eq!(sum, u128::from(total));
            let weight_sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
            for (part, weight) in parts.iter().zip(&weights) {
                // |part - total·w/W| < 1, in integers: |part·W - total·w| < W.
                let exact = u128::from(total) * u128::from(*weight);
                let scaled = u128::from(*part) * weight_sum;
                prop_assert!(scaled.abs_diff(exact) < weight_sum);
            }
        }

        #[test]
        fn rate_parts_add_up_to_the_rounded_total(
            connections in 1u64..10_000,
            rate_milli in 1_000_000u64..1_000_000_000,
            weights in proptest::collection::vec(1u64..100, 1..8),
        ) {
            let rate = rate_milli as f64 / 1000.0;
            let shares = split_load(connections, Some(rate), &weights).unwrap();
            let conns: u64 = shares.iter().map(|s| s.connections).sum();
            prop_assert_eq!(conns, connections);
            let milli: u64 = shares
                .iter()
                .map(|s| (s.rate.unwrap_or(0.0) * 1000.0).round() as u64)
                .sum();
            prop_assert_eq!(milli, rate_milli);
        }
    }
}
