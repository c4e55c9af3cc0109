//! Reading the harness's `results.json` types ([`Results`], schema "gev-harness/1") into the
//! plain [`Report`] every plot and page is drawn from.
//!
//! The harness's per-point summaries give throughput intervals, percentiles and reference ratios;
//! its run records give each run's loadgen summary, from which come the time series and the
//! latency histograms (merged over the repeats of a point). Everything the report should warn
//! about — failed runs, servers that did not stop cleanly, request errors, loadgen's own
//! warnings, histograms that would not decode — becomes a note.

use crate::from_loadgen;
use crate::model::{Estimate, LatencySummary, PointKey, PointSummary, Report, RunSeries};
use crate::results::{Interval, PointParams, Results};

/// Build the report for a sweep's results.
pub fn report_from_results(results: &Results) -> Report {
    let mut notes: Vec<String> = results.notes.clone();

    let points = results
        .summaries
        .iter()
        .map(|summary| {
            let context = format!("{} at {}", summary.server, summary.point);
            let runs: Vec<_> = results.runs_of(&summary.server, &summary.point).collect();
            let (histogram, histogram_notes) =
                from_loadgen::merged_latency_histogram(runs.iter().map(|r| &r.summary), &context);
            notes.extend(histogram_notes);
            if summary.errors > 0 {
                notes.push(format!(
                    "{context}: {} request errors over {} run(s)",
                    summary.errors, summary.runs
                ));
            }
            let mut warnings: Vec<&String> =
                runs.iter().flat_map(|r| &r.summary.warnings).collect();
            warnings.sort();
            warnings.dedup();
            notes.extend(
                warnings
                    .into_iter()
                    .map(|w| format!("{context}: loadgen: {w}")),
            );
            PointSummary {
                key: point_key(&summary.server, &summary.point),
                throughput: estimate(&summary.throughput_rps),
                latency_us: LatencySummary {
                    p50: summary.latency_us.p50,
                    p99: summary.latency_us.p99,
                    p999: summary.latency_us.p999,
                },
                histogram,
                throughput_ratios: summary
                    .ratios
                    .iter()
                    .map(|r| (r.reference.clone(), estimate(&r.throughput)))
                    .collect(),
            }
        })
        .collect();

    let runs = results
        .runs
        .iter()
        .map(|run| {
            if !run.server_exit.is_clean() {
                notes.push(format!(
                    "{} at {} repeat {}: server did not stop cleanly ({:?})",
                    run.server,
                    run.point,
                    run.repeat + 1,
                    run.server_exit
                ));
            }
            RunSeries {
                key: point_key(&run.server, &run.point),
                repeat: run.repeat,
                samples: from_loadgen::time_samples(&run.summary),
            }
        })
        .collect();

    notes.extend(results.failures.iter().map(|failure| {
        format!(
            "{} at {} repeat {} failed: {}",
            failure.server,
            failure.point,
            failure.repeat + 1,
            failure.error
        )
    }));

    Report {
        title: title(results),
        environment: environment(results),
        servers: results
            .spec
            .servers
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        points,
        runs,
        references: results.references().into_iter().map(String::from).collect(),
        notes,
    }
}

/// The label plots group by: the load without loop count and rate, `raw 64 B, 50 conns`.
pub fn workload_label(point: &PointParams) -> String {
    let mut label = format!(
        "{} {} B, {} conns",
        point.framing, point.payload_size, point.connections
    );
    if point.pipeline > 1 {
        label.push_str(&format!(", pipeline {}", point.pipeline));
    }
    label
}

fn point_key(server: &str, point: &PointParams) -> PointKey {
    PointKey {
        server: server.to_string(),
        loops: point.loops,
        workload: workload_label(point),
        offered_rate: point.rate,
    }
}

fn estimate(interval: &Interval) -> Estimate {
    Estimate {
        median: interval.median,
        low: interval.low,
        high: interval.high,
    }
}

fn title(results: &Results) -> String {
    let spec = results.spec.source.as_deref().unwrap_or("built-in spec");
    format!("gev sweep · {spec} · {}", results.created)
}

fn environment(results: &Results) -> Vec<(String, String)> {
    let env = &results.environment;
    let spec = &results.spec;
    let mut pairs = vec![
        ("created".to_string(), results.created.clone()),
        ("cpu".to_string(), env.cpu.clone()),
        ("cores".to_string(), env.cores.to_string()),
        ("kernel".to_string(), env.kernel.clone()),
        ("rustc".to_string(), env.rustc.clone()),
        (
            "git commit".to_string(),
            env.git_commit.clone().unwrap_or_else(|| "unknown".into()),
        ),
    ];
    if !env.pinning.is_empty() {
        pairs.push(("pinning".into(), env.pinning.clone()));
    }
    if let Some([one, five, fifteen]) = env.load_average {
        pairs.push((
            "load average at start".into(),
            format!("{one:.2} {five:.2} {fifteen:.2}"),
        ));
    }
    if !env.harness_version.is_empty() {
        pairs.push(("harness".into(), env.harness_version.clone()));
    }
    pairs.push((
        "runs".into(),
        format!(
            "{} s measured after {} s warm-up, {} repeat(s) per point, repeats interleaved across servers",
            spec.duration_secs, spec.warmup_secs, spec.repeats
        ),
    ));
    for server in &spec.servers {
        pairs.push((
            format!(
                "server {}{}",
                server.name,
                if server.reference { " (reference)" } else { "" }
            ),
            server.command.clone(),
        ));
    }
    pairs
}
