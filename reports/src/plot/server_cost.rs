//! Server CPU per request vs loop count: for one load (workload × offered rate), one line per
//! server through the median microseconds of server CPU time per completed request at each loop
//! count, with the 95% interval as an error bar. Drawn beside the throughput plot.
//!
//! This is the plot that shows what a server costs when the throughput plot cannot: with the
//! generator saturated every server completes about as many requests, but each spends its own
//! CPU time on them (process CPU: every thread, including the softirq work the kernel does in
//! the process's context). Lower is better.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::throughput::{draw_estimates_vs_loops, Axis};
use super::ServerSeries;
use super::{chart, series_by_loops_of, DrawFailure, PlotData, PlotJob, PlotKind};
use crate::model::{Estimate, Report};

/// The data of one server-cost plot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerCostPlot {
    /// One entry per server that has cost figures for this load.
    pub servers: Vec<ServerSeries<Estimate>>,
}

/// How this plot labels its value axis.
const CPU_AXIS: Axis = Axis {
    description: "server CPU µs per request (median, 95% interval)",
    format: |y| format!("{y:.1}"),
    missing: "No server CPU figures for this load.",
    all_zero: "no server spent measurable CPU time at this load",
};

/// One plot per load that has cost figures.
pub fn plan(report: &Report, servers: &[String]) -> Vec<PlotJob> {
    chart::plan_per_load(
        report,
        PlotKind::ServerCost,
        |workload, rate| {
            series_by_loops_of(report, servers, workload, rate, || {
                report.costs.iter().map(|c| (&c.key, c.server_cpu_us))
            })
        },
        |lines| PlotData::ServerCost(ServerCostPlot { servers: lines }),
    )
}

impl ServerCostPlot {
    /// Paint the plot (or a note saying there are no points).
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> Result<(), DrawFailure> {
        draw_estimates_vs_loops(root, title, &self.servers, &CPU_AXIS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PointCost, PointKey};

    fn cost(server: &str, loops: u32, micros: f64) -> PointCost {
        PointCost {
            key: PointKey {
                server: server.into(),
                loops,
                workload: "raw 64 B".into(),
                offered_rate: None,
            },
            server_cpu_us: Some(Estimate {
                median: micros,
                low: micros * 0.95,
                high: micros * 1.05,
            }),
            ..PointCost::default()
        }
    }

    #[test]
    fn plans_one_plot_per_load_from_the_costs() {
        let report = Report {
            costs: vec![
                cost("gev", 2, 4.0),
                cost("gev", 1, 5.0),
                cost("ref", 1, 6.0),
            ],
            ..Report::default()
        };
        let jobs = plan(&report, &report.server_order());
        assert!(jobs.is_empty(), "no points, no load groups");
        let with_points = Report {
            points: report
                .costs
                .iter()
                .map(|c| crate::model::PointSummary {
                    key: c.key.clone(),
                    throughput: Estimate::default(),
                    latency_us: Default::default(),
                    histogram: Default::default(),
                    throughput_ratios: Vec::new(),
                })
                .collect(),
            ..report
        };
        let jobs = plan(&with_points, &with_points.server_order());
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].stem, "server-cost-raw-64-b");
        let PlotData::ServerCost(plot) = &jobs[0].data else {
            panic!("wrong plot data");
        };
        let loops: Vec<u32> = plot.servers[0].points.iter().map(|(l, _)| *l).collect();
        assert_eq!(loops, [1, 2]);
        assert_eq!(plot.servers.len(), 2);
    }
}
