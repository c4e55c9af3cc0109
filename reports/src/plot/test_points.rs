//! Report points for the plot kinds' unit tests: one way to build a closed-loop point with a
//! ±10% throughput interval, so every kind's planner is tested on the same shape of data.

use crate::model::{Estimate, LatencyHistogram, LatencySummary, PointKey, PointSummary};

/// The key of a closed-loop point.
pub fn key(server: &str, loops: u32, workload: &str) -> PointKey {
    PointKey {
        server: server.into(),
        loops,
        workload: workload.into(),
        offered_rate: None,
    }
}

/// A closed-loop point of `rps` requests per second (interval ±10%), no latency figures.
pub fn point(server: &str, loops: u32, workload: &str, rps: f64) -> PointSummary {
    PointSummary {
        key: key(server, loops, workload),
        throughput: Estimate {
            median: rps,
            low: rps * 0.9,
            high: rps * 1.1,
        },
        latency_us: LatencySummary::default(),
        histogram: LatencyHistogram::Missing,
        throughput_ratios: Vec::new(),
    }
}
