//! Reading the harness's `results.json` types ([`Results`], schema "gev-harness/1") into the
//! plain [`Report`] every plot and page is drawn from.
//!
//! The harness's per-point summaries give throughput intervals, percentiles and reference ratios;
//! its run records give each run's loadgen summary, from which come the time series and the
//! latency histograms (merged over the repeats of a point). Everything the report should warn
//! about — failed runs, servers that did not stop cleanly, request errors, loadgen's own
//! warnings, histograms that would not decode — becomes a note.

use crate::from_loadgen;
use crate::model::{
    Estimate, LatencySummary, PointCost, PointDatagrams, PointKey, PointSummary,
    PointTransportRatio, Report, RunSeries, ServerVariant,
};
use crate::results::{Interval, PointParams, PointTransport, Results, ServerExit};
use crate::verdict;

/// Build the report for a sweep's results.
pub fn report_from_results(results: &Results) -> Report {
    let mut notes: Vec<String> = results.notes.clone();
    notes.extend(variants_note(results));
    // In a sweep over several transports a TCP label names TCP too.
    let name_tcp = several_transports(results);
    let key_of = |server: &str, point: &PointParams| point_key(server, point, name_tcp);

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
            // The harness may already have copied a run's warnings into the sweep's notes.
            warnings.retain(|w| !results.notes.iter().any(|note| note.contains(w.as_str())));
            notes.extend(
                warnings
                    .into_iter()
                    .map(|w| format!("{context}: loadgen: {w}")),
            );
            PointSummary {
                key: key_of(&summary.server, &summary.point),
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
                    "{} at {} repeat {}: server did not stop cleanly: {}",
                    run.server,
                    run.point,
                    run.repeat + 1,
                    describe_exit(&run.server_exit)
                ));
            }
            RunSeries {
                key: key_of(&run.server, &run.point),
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

    let costs = results
        .summaries
        .iter()
        .filter(|s| {
            s.server_cpu_us_per_request.is_some() || s.generator_cpu_us_per_request.is_some()
        })
        .map(|summary| PointCost {
            key: key_of(&summary.server, &summary.point),
            server_cpu_us: summary.server_cpu_us_per_request.as_ref().map(estimate),
            generator_cpu_us: summary.generator_cpu_us_per_request.as_ref().map(estimate),
            server_cpu_ratios: summary
                .ratios
                .iter()
                .filter_map(|r| {
                    r.server_cpu_per_request
                        .as_ref()
                        .map(|cpu| (r.reference.clone(), estimate(cpu)))
                })
                .collect(),
        })
        .collect();

    let datagrams = results
        .summaries
        .iter()
        .filter_map(|summary| {
            summary.datagrams.map(|counts| PointDatagrams {
                key: key_of(&summary.server, &summary.point),
                counts,
                server: summary.server_udp,
            })
        })
        .collect();
    let transport_ratios = results
        .summaries
        .iter()
        .filter_map(|summary| {
            summary.vs_tcp.as_ref().map(|ratio| PointTransportRatio {
                key: key_of(&summary.server, &summary.point),
                throughput: estimate(&ratio.throughput),
                server_cpu: ratio.server_cpu_per_request.as_ref().map(estimate),
            })
        })
        .collect();

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
        notes: verdict::fold_notes(&notes),
        costs,
        verdicts: verdict::verdict_lines(results),
        schedule: Some(verdict::schedule_statement(results)),
        datagrams,
        transport_ratios,
        variants: variants(results),
    }
}

/// How tables name `server` at a point of `transport`: what ran there
/// ([`crate::model::ran_as`]).
pub fn name_at(results: &Results, server: &str, transport: PointTransport) -> String {
    let variants = variants(results);
    let variant = variants
        .iter()
        .find(|v| v.server == server && v.transport == transport);
    crate::model::ran_as(server, variant.map(|v| v.binary.as_str()))
}

/// Which binary each server ran as at each other transport, from its recorded commands.
fn variants(results: &Results) -> Vec<ServerVariant> {
    results
        .spec
        .servers
        .iter()
        .flat_map(|server| {
            server
                .transport_commands
                .iter()
                .filter_map(|(transport, command)| {
                    Some(ServerVariant {
                        server: server.name.clone(),
                        transport: transport.parse().ok()?,
                        binary: binary_of(command),
                    })
                })
        })
        .collect()
}

/// The file name of the program a command template runs (the whole command if it has none).
fn binary_of(command: &str) -> String {
    command
        .split_whitespace()
        .next()
        .and_then(|program| std::path::Path::new(program).file_name())
        .map_or_else(|| command.to_string(), |n| n.to_string_lossy().into_owned())
}

/// Which binary each server ran as at the Unix-socket and UDP points (legends and tables name
/// the variant beside the server, `gev-udp-echo (gev-echo)`), if any server had a variant.
fn variants_note(results: &Results) -> Option<String> {
    let variants: Vec<String> = variants(results)
        .iter()
        .map(|v| format!("{} over {} as {}", v.server, v.transport, v.binary))
        .collect();
    (!variants.is_empty()).then(|| {
        format!(
            "servers run as their variant at other transports: {} \
             (commands under Environment)",
            variants.join(", ")
        )
    })
}

/// Whether the results hold points of more than one transport.
pub fn several_transports(results: &Results) -> bool {
    let mut seen: Vec<PointTransport> = results.spec.transports.clone();
    seen.extend(results.summaries.iter().map(|s| s.point.transport));
    seen.extend(results.runs.iter().map(|r| r.point.transport));
    seen.iter().any(|t| *t != seen[0])
}

/// The label plots group by: the load without loop count and rate, `raw 64 B, 50 conns`,
/// with the transport after it unless it is TCP and `name_tcp` is false (`, Unix socket`,
/// `, UDP`, `, TCP`; `plot::transports` splits it off).
pub fn workload_label(point: &PointParams, name_tcp: bool) -> String {
    let mut label = format!(
        "{} {} B, {} conns",
        point.framing, point.payload_size, point.connections
    );
    if point.pipeline > 1 {
        label.push_str(&format!(", pipeline {}", point.pipeline));
    }
    // TLS points are other loads than their plain twins (`plot::tls` splits the suffix off).
    if !point.tls.is_off() {
        label.push_str(&format!(", {}", point.tls.label()));
    }
    if name_tcp || !point.transport.is_tcp() {
        label.push_str(&format!(", {}", point.transport.label()));
    }
    label
}

/// How a server that did not stop cleanly ended, in words.
fn describe_exit(exit: &ServerExit) -> String {
    match exit {
        ServerExit::Clean { after_secs } => format!("exited cleanly after {after_secs:.2} s"),
        ServerExit::Failed { status } => format!("stopped with {status}"),
        ServerExit::Killed { timeout_secs } => {
            format!("still running {timeout_secs} s after SIGINT, killed")
        }
        ServerExit::Early { status } => format!("exited during the run ({status})"),
    }
}

fn point_key(server: &str, point: &PointParams, name_tcp: bool) -> PointKey {
    PointKey {
        server: server.to_string(),
        loops: point.loops,
        workload: workload_label(point, name_tcp),
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
            "{} s measured after {} s warm-up, {} repeat(s) per point, {}",
            spec.duration_secs,
            spec.warmup_secs,
            spec.repeats,
            if spec.schedule.as_deref() == Some("side-by-side") {
                "every server of a point at the same moment (side by side)"
            } else {
                "repeats interleaved across servers (alternating)"
            }
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
        // At Unix-socket and UDP points a server runs as its variant for that transport (the
        // tokio reference as ref-tokio-unix-echo, gev-echo as gev-udp-echo).
        for (transport, command) in &server.transport_commands {
            pairs.push((
                format!("server {} over {transport}", server.name),
                command.clone(),
            ));
        }
    }
    pairs.extend(crate::hosts::environment_rows(results));
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{
        Environment, LatencyPercentiles, PointSummary as HarnessPoint, RunRecord, SpecRecord,
        SCHEMA,
    };

    fn point() -> PointParams {
        PointParams {
            loops: 2,
            framing: "length".into(),
            connections: 8,
            payload_size: 512,
            pipeline: 4,
            rate: None,
            duration_secs: 1.0,
            warmup_secs: 0.5,
            tls: Default::default(),
            transport: Default::default(),
        }
    }

    fn results(warning: &str, sweep_notes: Vec<String>) -> Results {
        let percentiles = r#"{"p50":1,"p90":1,"p99":1,"p999":1,"max":1,"mean":1}"#;
        let summary_json = format!(
            r#"{{"schema":"gev-loadgen/1","config":{{"target":"t","framing":"length",
            "connections":8,"threads":1,"duration_secs":1.0,"warmup_secs":0.5,"requests":null,
            "pipeline":4,"rate":null,"size_min":512,"size_max":512,"verify":false,
            "timeout_ms":1000,"connect_rate":null,"pin":false}},"env":{{"cpu_model":"c",
            "cores":2,"kernel":"k","version":"v"}},"connections":{{"opened":8,"failed":0}},
            "requests":{{"sent":1,"completed":1,"errors":{{}}}},
            "throughput":{{"rps":1.0,"bytes_per_sec":1.0}},"target_rate":null,
            "latency_us":{percentiles},"latency_uncorrected_us":{percentiles},
            "connect_us":{percentiles},"loop_lag_us":{percentiles},"histograms":{{}},
            "timeseries":[{{"t":1.0,"rps":3.0,"p99_us":4.0}}],"warnings":["{warning}"],
            "duration_secs":1.0}}"#
        );
        let summary = gev_loadgen::Summary::from_json(&summary_json).unwrap();
        Results {
            schema: SCHEMA.into(),
            created: "now".into(),
            environment: Environment {
                cpu: "c".into(),
                cores: 2,
                kernel: "k".into(),
                rustc: "r".into(),
                git_commit: None,
                pinning: String::new(),
                load_average: None,
                harness_version: String::new(),
            },
            spec: SpecRecord {
                servers: Vec::new(),
                loops: vec![2],
                connections: vec![8],
                payload_sizes: vec![512],
                framings: vec!["length".into()],
                rates: vec![None],
                pipeline: 4,
                duration_secs: 1.0,
                warmup_secs: 0.5,
                repeats: 1,
                source: None,
                text: None,
                schedule: None,
                transports: Vec::new(),
            },
            runs: vec![RunRecord {
                server: "gev-protocol".into(),
                point: point(),
                repeat: 0,
                addr: "a".into(),
                summary,
                server_cpu_secs: None,
                server_cpu_window_secs: None,
                placement: None,
                metrics_before: None,
                metrics_after: None,
                server_exit: ServerExit::Killed { timeout_secs: 5.0 },
                hosts: Vec::new(),
            }],
            summaries: vec![HarnessPoint {
                server: "gev-protocol".into(),
                point: point(),
                runs: 1,
                throughput_rps: Interval {
                    median: 1.0,
                    low: 1.0,
                    high: 1.0,
                    confidence: 0.95,
                },
                latency_us: LatencyPercentiles::default(),
                errors: 3,
                ratios: Vec::new(),
                server_cpu_us_per_request: None,
                generator_cpu_us_per_request: None,
                limit: None,
                datagrams: None,
                vs_tcp: None,
                server_udp: None,
            }],
            failures: Vec::new(),
            notes: sweep_notes,
            hosts: None,
        }
    }

    #[test]
    fn maps_points_runs_and_notes() {
        let report = report_from_results(&results("generator busy", Vec::new()));
        assert_eq!(report.title, "gev sweep · built-in spec · now");
        assert_eq!(report.points.len(), 1);
        let key = &report.points[0].key;
        assert_eq!(key.workload, "length 512 B, 8 conns, pipeline 4");
        assert_eq!((key.loops, key.offered_rate), (2, None));
        assert!(matches!(
            report.points[0].histogram,
            crate::model::LatencyHistogram::Missing
        ));
        assert_eq!(report.runs[0].samples[0].p99_us, 4.0);
        let notes = report.notes.join("\n");
        assert!(notes.contains("3 request errors"), "{notes}");
        assert!(
            notes.contains("did not stop cleanly: still running 5 s after SIGINT, killed"),
            "{notes}"
        );
        assert!(notes.contains("loadgen: generator busy"), "{notes}");
    }

    #[test]
    fn warnings_already_in_sweep_notes_are_not_repeated() {
        let report = report_from_results(&results(
            "generator busy",
            vec!["gev-protocol repeat 0: loadgen: generator busy".into()],
        ));
        let mentions = report
            .notes
            .iter()
            .filter(|n| n.contains("generator busy"))
            .count();
        assert_eq!(mentions, 1, "{:?}", report.notes);
    }
}
