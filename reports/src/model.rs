//! The plain data every plot and page is drawn from: one [`Report`] holding the per-point
//! summaries and the per-run time series of a sweep.
//!
//! This is the seam between reading results and rendering them (as criterion keeps analysis and
//! plotting apart): `from_results` fills a [`Report`] from the harness's `results.json` types,
//! and the plot, markdown and HTML modules read only these types. Tests build a [`Report`] by
//! hand to exercise degenerate shapes (one point, zero throughput, no histogram).

use hdrhistogram::Histogram;

/// The servers whose figures every other server is compared against, in table column order.
pub const REFERENCE_SERVERS: [&str; 2] = ["ref-tokio-echo", "ref-mio-echo"];

/// Everything a report shows.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Heading of report.md and index.html.
    pub title: String,
    /// Where the figures came from (cpu, cores, kernel, rustc, git commit, ...), in display order.
    pub environment: Vec<(String, String)>,
    /// Server names in display order; fixes each server's colour across all plots. Servers seen
    /// only in `points` or `runs` are appended after these.
    pub servers: Vec<String>,
    /// One summary per server × loop count × workload × offered rate.
    pub points: Vec<PointSummary>,
    /// One time series per run (repeats included).
    pub runs: Vec<RunSeries>,
    /// Servers the others are compared against, in column order. Empty means: whichever of
    /// [`REFERENCE_SERVERS`] appear.
    pub references: Vec<String>,
    /// Caveats carried over from the results (loadgen warnings, undecodable data), folded to
    /// one line per kind.
    pub notes: Vec<String>,
    /// CPU cost figures per point, beside [`Report::points`] (same keys); empty when the
    /// results carry none.
    pub costs: Vec<PointCost>,
    /// The verdict sentences shown first: one per load and loop count.
    pub verdicts: Vec<String>,
    /// Which schedule produced the figures and what that means for them, if known.
    pub schedule: Option<String>,
    /// UDP points' datagram counters (same keys as [`Report::points`]); empty without UDP.
    pub datagrams: Vec<PointDatagrams>,
    /// Unix-socket and UDP points against the same server over TCP; empty without them.
    pub transport_ratios: Vec<PointTransportRatio>,
    /// Which binary each server ran as at the other transports' points; empty for TCP only.
    pub variants: Vec<ServerVariant>,
}

/// How a server is named where it ran as `variant` (another binary): `gev-udp-echo (gev-echo)`.
pub fn ran_as(server: &str, variant: Option<&str>) -> String {
    match variant {
        Some(binary) if binary != server => format!("{binary} ({server})"),
        _ => server.to_string(),
    }
}

/// A server run as a variant at one transport's points (issue 15): the tokio reference runs as
/// `ref-tokio-udp-echo` at UDP points, gev-echo as `gev-udp-echo`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerVariant {
    /// The server's name in the spec.
    pub server: String,
    /// The transport it ran as `binary` at.
    pub transport: crate::results::PointTransport,
    /// The file name of the program its command ran there.
    pub binary: String,
}

/// A UDP point's datagram counters summed over its runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PointDatagrams {
    /// Which point (same key as its [`PointSummary`]).
    pub key: PointKey,
    /// Sent, received, lost, duplicated, reordered, late.
    pub counts: crate::results::DatagramCounts,
    /// The server's own counters (datagrams per syscall, drops), when it was scraped.
    pub server: Option<crate::results::ServerUdpCounters>,
}

/// A server at a Unix-socket or UDP point against itself at the same load over TCP.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PointTransportRatio {
    /// Which point (the non-TCP one).
    pub key: PointKey,
    /// Throughput here ÷ over TCP (ratio of medians, 95% bootstrap interval).
    pub throughput: Estimate,
    /// Server CPU per request here ÷ over TCP, when both were readable.
    pub server_cpu: Option<Estimate>,
}

/// The CPU cost of one point: what the server and the generator spent per completed request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PointCost {
    /// Which point (same key as its [`PointSummary`]).
    pub key: PointKey,
    /// Server CPU time per request, microseconds (median over repeats, 95% interval).
    pub server_cpu_us: Option<Estimate>,
    /// Generator CPU time per request, microseconds.
    pub generator_cpu_us: Option<Estimate>,
    /// Server CPU per request as a ratio to each reference (lower is better), by name.
    pub server_cpu_ratios: Vec<(String, Estimate)>,
}

/// Which point of the sweep a figure belongs to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PointKey {
    /// The server's name as the sweep spec gives it.
    pub server: String,
    /// Event loops (or worker threads) the server ran with.
    pub loops: u32,
    /// Everything else that identifies the load (framing, connections, payload size, pipeline),
    /// as a short human label, e.g. `raw 64 B, 50 conns`. Plots group by this label.
    pub workload: String,
    /// The open-loop request rate, or `None` for a closed-loop point.
    pub offered_rate: Option<f64>,
}

/// A median with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Estimate {
    /// The point estimate (median over repeats).
    pub median: f64,
    /// Lower bound of the 95% interval.
    pub low: f64,
    /// Upper bound of the 95% interval.
    pub high: f64,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

/// The latency histogram of a point, or why there is none.
#[derive(Debug, Clone, Default)]
pub enum LatencyHistogram {
    /// Values in nanoseconds, merged over the point's repeats.
    Recorded(Box<Histogram<u64>>),
    /// The results carry no histogram for this point.
    #[default]
    Missing,
    /// A histogram was present but could not be decoded; the text says why.
    Invalid(String),
}

/// The summary of one point of the sweep.
#[derive(Debug, Clone)]
pub struct PointSummary {
    /// Which point.
    pub key: PointKey,
    /// Completed requests per second.
    pub throughput: Estimate,
    /// Latency percentiles (corrected for coordinated omission in open-loop runs).
    pub latency_us: LatencySummary,
    /// The merged latency histogram for the percentile spectrum.
    pub histogram: LatencyHistogram,
    /// Throughput ratios to reference servers computed by the harness (median ratio with its
    /// bootstrap interval), by reference name. When a reference is missing here the table
    /// computes the plain ratio of medians instead.
    pub throughput_ratios: Vec<(String, Estimate)>,
}

/// One second of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeSample {
    /// End of the interval, seconds since measuring began.
    pub t_secs: f64,
    /// Replies completed per second in the interval.
    pub rps: f64,
    /// Latency p99 of the interval, microseconds.
    pub p99_us: f64,
}

/// The time series of one run (one repeat of one point).
#[derive(Debug, Clone)]
pub struct RunSeries {
    /// Which point the run measured.
    pub key: PointKey,
    /// Repeat number, from 0.
    pub repeat: u32,
    /// One sample per second of the measured window.
    pub samples: Vec<TimeSample>,
}

impl Report {
    /// The cost figures of the point with this key, if any.
    pub fn cost_of(&self, key: &PointKey) -> Option<&PointCost> {
        self.costs
            .iter()
            .find(|cost| cost.key.server == key.server && cost.key.same_load(key))
    }

    /// The binary `server` ran as at `transport`'s points, when that is another program than
    /// its own name (a Unix-socket point of gev-echo runs gev-echo itself).
    pub fn variant_of(
        &self,
        server: &str,
        transport: crate::results::PointTransport,
    ) -> Option<&str> {
        self.variants
            .iter()
            .find(|v| v.server == server && v.transport == transport && v.binary != server)
            .map(|v| v.binary.as_str())
    }

    /// How legends and tables name `server` at a point of `workload`: what ran there, e.g.
    /// `gev-udp-echo (gev-echo)` at a UDP load, else the server's name.
    pub fn name_at(&self, server: &str, workload: &str) -> String {
        let (_, transport) = crate::plot::transports::split_transport(workload);
        ran_as(server, self.variant_of(server, transport))
    }

    /// The datagram counters of the point with this key, if it ran over UDP.
    pub fn datagrams_of(&self, key: &PointKey) -> Option<&PointDatagrams> {
        self.datagrams
            .iter()
            .find(|d| d.key.server == key.server && d.key.same_load(key))
    }

    /// The ratio to TCP of the point with this key, if it has one.
    pub fn transport_ratio_of(&self, key: &PointKey) -> Option<&PointTransportRatio> {
        self.transport_ratios
            .iter()
            .find(|r| r.key.server == key.server && r.key.same_load(key))
    }

    /// Every server name, in display order: `servers` first, then any seen only in the data.
    pub fn server_order(&self) -> Vec<String> {
        let mut order: Vec<String> = Vec::new();
        let seen = self
            .servers
            .iter()
            .chain(self.points.iter().map(|p| &p.key.server))
            .chain(self.runs.iter().map(|r| &r.key.server));
        for name in seen {
            if !order.contains(name) {
                order.push(name.clone());
            }
        }
        order
    }

    /// Workload labels in order of first appearance.
    pub fn workloads(&self) -> Vec<String> {
        let mut order: Vec<String> = Vec::new();
        let seen = self
            .points
            .iter()
            .map(|p| &p.key.workload)
            .chain(self.runs.iter().map(|r| &r.key.workload));
        for workload in seen {
            if !order.contains(workload) {
                order.push(workload.clone());
            }
        }
        order
    }

    /// The reference servers that have figures in this report: [`Report::references`] when
    /// given, else the [`REFERENCE_SERVERS`] that appear, in that order.
    pub fn references_present(&self) -> Vec<String> {
        let measured = |name: &str| self.points.iter().any(|p| p.key.server == name);
        if self.references.is_empty() {
            REFERENCE_SERVERS
                .into_iter()
                .filter(|name| measured(name))
                .map(String::from)
                .collect()
        } else {
            self.references
                .iter()
                .filter(|name| measured(name))
                .cloned()
                .collect()
        }
    }
}

impl PointKey {
    /// Whether two keys describe the same load at the same loop count (servers may differ).
    pub fn same_load(&self, other: &PointKey) -> bool {
        self.loops == other.loops
            && self.workload == other.workload
            && rates_equal(self.offered_rate, other.offered_rate)
    }
}

/// Offered rates compare equal when both are closed loop or both name the same rate.
pub fn rates_equal(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= f64::EPSILON * a.abs().max(b.abs()).max(1.0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(server: &str, workload: &str) -> PointKey {
        PointKey {
            server: server.into(),
            loops: 1,
            workload: workload.into(),
            offered_rate: None,
        }
    }

    fn point(server: &str, workload: &str) -> PointSummary {
        PointSummary {
            key: key(server, workload),
            throughput: Estimate::default(),
            latency_us: LatencySummary::default(),
            histogram: LatencyHistogram::Missing,
            throughput_ratios: Vec::new(),
        }
    }

    #[test]
    fn server_order_keeps_declared_order_then_appends_unseen() {
        let report = Report {
            servers: vec!["b".into(), "a".into()],
            points: vec![point("c", "w"), point("a", "w")],
            ..Report::default()
        };
        assert_eq!(report.server_order(), ["b", "a", "c"]);
    }

    #[test]
    fn references_present_follow_fixed_order() {
        let report = Report {
            points: vec![point("ref-mio-echo", "w"), point("ref-tokio-echo", "w")],
            ..Report::default()
        };
        assert_eq!(report.references_present(), REFERENCE_SERVERS);
        assert!(Report::default().references_present().is_empty());
        let declared = Report {
            references: vec!["ref-mio-echo".into(), "absent".into()],
            ..report
        };
        assert_eq!(declared.references_present(), ["ref-mio-echo"]);
    }

    #[test]
    fn same_load_ignores_server_only() {
        let a = key("a", "w");
        let mut b = key("b", "w");
        assert!(a.same_load(&b));
        b.offered_rate = Some(1000.0);
        assert!(!a.same_load(&b));
        let mut c = key("c", "w");
        c.loops = 2;
        assert!(!a.same_load(&c));
    }

    #[test]
    fn workloads_in_first_appearance_order() {
        let report = Report {
            points: vec![point("a", "y"), point("a", "x"), point("b", "y")],
            ..Report::default()
        };
        assert_eq!(report.workloads(), ["y", "x"]);
    }
}
