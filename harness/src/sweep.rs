//! `harness sweep`: expand a checked spec into points, run every server at every point on the
//! spec's schedule, summarise, write the output directory and render the report.
//!
//! Two schedules ([`Schedule`]):
//! - `alternating` (the default): one server at a time, repeats interleaved across servers
//!   (A B C A B C), so slow drift hits all alike. Each run has the machine to itself, so its
//!   absolute figures (req/s, latency) are what that server does alone; but a core's speed on a
//!   shared VM moves 10-20% from one second to the next, and that lands in the ratios.
//! - `side-by-side`: every server of a point at the same moment on the same server cores, each
//!   driven by its own loadgen on the loadgen cores (what `harness compare` does). Whatever the
//!   machine does during the window weighs on all alike, so ratios to the references (above all
//!   server CPU per request) are far tighter; absolute req/s and latency are each server's share
//!   of a machine it splits with the others, not what it does alone. It takes a third of the
//!   time with three servers.
//!
//! Why alternating stays the default: the sweep's throughput and latency plots are read as
//! absolute figures of each server, which only alternating gives; side-by-side is the schedule
//! for a question about cost ratios (`--schedule side-by-side`). The quick sweep takes about
//! 2 minutes alternating and under 1 minute side by side.
//!
//! Transports (issue 15) are a point dimension like TLS: each point has one, the points of one
//! load at its transports run one after the other, and a server runs at a transport's points as
//! its variant for it (`transport_run.rs`), under the same name.
//!
//! Where it sits: spec (`spec.rs`) -> **sweep** -> runs (`runner.rs`) -> summaries
//! (`summarize.rs`) -> files (`output.rs`) -> plots and pages (`gev_reports::render`). Before
//! anything long starts, every server is started once and stopped (a server that never opens
//! its port is an error here, not an hour in). A run that fails later is recorded in
//! `results.failures` and the sweep goes on; the exit status says so.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use gev_reports::results::{
    PointParams, Results, RunFailure, RunRecord, ServerRecord, SpecRecord, SCHEMA,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::env;
use crate::framing::Framing;
use crate::output;
use crate::pinning::Pinning;
use crate::runner::{self, RunOptions, ServerSpec};
use crate::spec::{Schedule, Spec};
use crate::summarize::{self, ServerEntry};
use crate::transport_run::{self, Variants};

/// Where and how a sweep writes.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Output directories are created under this (default `reports/out`).
    pub out_root: PathBuf,
    /// Directory whose git commit is recorded.
    pub workspace: PathBuf,
    /// Render plots and pages after writing the results.
    pub render: bool,
}

/// What a finished sweep produced.
#[derive(Debug)]
pub struct SweepOutcome {
    /// The output directory.
    pub dir: PathBuf,
    /// Everything written to results.json.
    pub results: Results,
    /// Why rendering failed, if it did (the results are still written).
    pub render_error: Option<String>,
}

impl SweepOutcome {
    /// Whether every run completed and every server stopped cleanly.
    pub fn all_clean(&self) -> bool {
        self.results.failures.is_empty()
            && self
                .results
                .runs
                .iter()
                .all(|run| run.server_exit.is_clean())
            && self.render_error.is_none()
    }
}

/// Every point of the spec, framing-major, then loops, connections, payload size, rate, TLS
/// mode, transport (so one load's transports run back to back); then the handshake-only points (framing, loops, connections, rate, handshake mode; no
/// payload, pipeline 1). HTTP points send GET requests without a body, so they have one payload
/// size, 0.
pub fn points(spec: &Spec) -> Vec<PointParams> {
    let mut points = Vec::new();
    for framing in &spec.framings {
        let sizes: &[u64] = if *framing == Framing::Http {
            &[0]
        } else {
            &spec.payload_sizes
        };
        for &loops in &spec.loops {
            for &connections in &spec.connections {
                for &payload_size in sizes {
                    for &rate in &spec.rates {
                        for &tls in &spec.tls {
                            for &transport in &spec.transports {
                                points.push(PointParams {
                                    loops,
                                    framing: framing.as_str().to_string(),
                                    connections,
                                    payload_size,
                                    pipeline: spec.pipeline,
                                    rate,
                                    duration_secs: spec.duration.as_secs_f64(),
                                    warmup_secs: spec.warmup.as_secs_f64(),
                                    tls,
                                    transport,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    for framing in &spec.framings {
        for &loops in &spec.loops {
            for &connections in &spec.connections {
                for &rate in &spec.rates {
                    for &tls in &spec.tls_handshakes {
                        points.push(PointParams {
                            loops,
                            framing: framing.as_str().to_string(),
                            connections,
                            payload_size: 0,
                            pipeline: 1,
                            rate,
                            duration_secs: spec.duration.as_secs_f64(),
                            warmup_secs: spec.warmup.as_secs_f64(),
                            tls,
                            // TLS runs over TCP only (spec.rs refuses it with other transports).
                            transport: Default::default(),
                        });
                    }
                }
            }
        }
    }
    points
}

/// One scheduled run: indexes into the servers and points, and the repeat number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub server: usize,
    pub point: usize,
    pub repeat: u32,
}

/// Whether `server` runs at `point`: it speaks the point's framing, TLS mode and transport.
fn runs_at(server: &ServerSpec, point: &PointParams, variants: &Variants) -> bool {
    server.framing.as_str() == point.framing
        && crate::tls_run::runs_at(server, point.tls)
        && transport_run::runs_at(server, point.transport, variants)
}

/// The run order: per point, repeat 0 of every server that runs there (its framing, TLS mode
/// and transport), then repeat 1, and so on (A B A B, not A A B B).
pub fn schedule(
    servers: &[ServerSpec],
    variants: &Variants,
    points: &[PointParams],
    repeats: u32,
) -> Vec<Slot> {
    let mut slots = Vec::new();
    for (point_index, point) in points.iter().enumerate() {
        for repeat in 0..repeats {
            for (server_index, server) in servers.iter().enumerate() {
                if runs_at(server, point, variants) {
                    slots.push(Slot {
                        server: server_index,
                        point: point_index,
                        repeat,
                    });
                }
            }
        }
    }
    slots
}

/// One side-by-side group: every server that runs at a point (its framing, TLS mode and
/// transport), run at the same moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Indexes into the servers, in start order (rotated each repeat, so none always starts
    /// first).
    pub servers: Vec<usize>,
    pub point: usize,
    pub repeat: u32,
}

/// The side-by-side run order: per point, one group per repeat.
pub fn side_by_side_groups(
    servers: &[ServerSpec],
    variants: &Variants,
    points: &[PointParams],
    repeats: u32,
) -> Vec<Group> {
    let mut groups = Vec::new();
    for (point_index, point) in points.iter().enumerate() {
        let mut members: Vec<usize> = servers
            .iter()
            .enumerate()
            .filter(|(_, server)| runs_at(server, point, variants))
            .map(|(index, _)| index)
            .collect();
        if members.is_empty() {
            continue;
        }
        for repeat in 0..repeats {
            groups.push(Group {
                servers: members.clone(),
                point: point_index,
                repeat,
            });
            members.rotate_left(1);
        }
    }
    groups
}

/// The spec as results.json records it.
pub fn spec_record(spec: &Spec) -> SpecRecord {
    SpecRecord {
        servers: spec
            .servers
            .iter()
            .map(|server| ServerRecord {
                name: server.name.clone(),
                command: server.command.clone(),
                reference: server.reference,
                metrics: server.metrics,
                transport_commands: spec
                    .transports
                    .iter()
                    .filter_map(|&t| {
                        let command = spec.variants.get(&server.name)?.get(t)?;
                        Some((t.as_str().to_string(), command.clone()))
                    })
                    .collect(),
            })
            .collect(),
        loops: spec.loops.clone(),
        connections: spec.connections.clone(),
        payload_sizes: spec.payload_sizes.clone(),
        framings: spec
            .framings
            .iter()
            .map(|f| f.as_str().to_string())
            .collect(),
        rates: spec.rates.clone(),
        pipeline: spec.pipeline,
        duration_secs: spec.duration.as_secs_f64(),
        warmup_secs: spec.warmup.as_secs_f64(),
        repeats: spec.repeats,
        source: spec
            .source
            .as_ref()
            .map(|(path, _)| path.display().to_string()),
        text: spec.source.as_ref().map(|(_, text)| text.clone()),
        schedule: Some(spec.schedule.as_str().to_string()),
        // Only a sweep beyond TCP says so, so TCP-only results stay as they were.
        transports: if spec.transports.iter().all(|t| t.is_tcp()) {
            Vec::new()
        } else {
            spec.transports.clone()
        },
    }
}

/// Starts every server once at the first loop count, at every transport it runs at: all must
/// open their port (or socket) and stop.
pub fn preflight(spec: &Spec, options: &RunOptions) -> anyhow::Result<Vec<String>> {
    let loops = spec.loops.first().copied().unwrap_or(1);
    let mut notes = Vec::new();
    for server in &spec.servers {
        for &transport in &spec.transports {
            let Some(server) = spec.server_at(server, transport) else {
                continue;
            };
            let over = if transport.is_tcp() {
                String::new()
            } else {
                format!(" over {transport}")
            };
            let exit = runner::probe(&server, loops, options).with_context(|| {
                format!("server {:?}{over} failed its start-up check", server.name)
            })?;
            if !exit.is_clean() {
                notes.push(format!(
                    "server {:?}{over} did not stop cleanly in its start-up check: {exit:?}",
                    server.name
                ));
            }
        }
    }
    Ok(notes)
}

/// Runs the whole sweep and writes its output directory.
pub fn run(
    spec: &Spec,
    run_options: &RunOptions,
    options: &SweepOptions,
) -> anyhow::Result<SweepOutcome> {
    let started_at = SystemTime::now();
    // `--hosts` may add hosts after the spec was checked.
    if spec.hosts.is_some() && spec.transports.iter().any(|t| !t.is_tcp()) {
        anyhow::bail!(
            "transports other than tcp run on this machine only and cannot be combined with \
             hosts; drop --hosts or the spec's `transports`"
        );
    }
    let environment = env::capture(&options.workspace, &run_options.pinning);
    let session = match &spec.hosts {
        Some(hosts) => Some(crate::hosts::Session::open(
            hosts,
            &spec.servers,
            spec.loops.first().copied().unwrap_or(1),
            run_options,
        )?),
        None => None,
    };
    let mut notes = match &session {
        Some(session) => session.notes().to_vec(),
        None => preflight(spec, run_options)?,
    };
    let dir = output::create_run_dir(&options.out_root, started_at).with_context(|| {
        format!(
            "cannot create an output directory under {}",
            options.out_root.display()
        )
    })?;
    // TLS points: one throwaway certificate for every server and loadgen of the sweep.
    let mut run_options = run_options.clone();
    if spec
        .tls
        .iter()
        .chain(&spec.tls_handshakes)
        .any(|t| !t.is_off())
    {
        let files = crate::tls_cert::write_self_signed(&dir)?;
        notes.push(format!(
            "TLS points use the throwaway certificate {} (key {}) generated for this sweep",
            files.cert.display(),
            files.key.display()
        ));
        run_options.tls_cert = Some(files);
    }
    let run_options = &run_options;
    if run_options.per_point_cores.is_some() {
        notes.push(
            "placement per point: the server on one core per loop (at most all but one), \
             loadgen on every other core with one worker thread per core"
                .into(),
        );
    }
    let widest = spec.loops.iter().max().copied().unwrap_or(1);
    match &run_options.for_point(widest).pinning {
        Pinning::Unpinned(why) => notes.push(why.clone()),
        Pinning::Disjoint { server, .. } => {
            if let Some(&most) = spec.loops.iter().max() {
                if most as usize > server.len() {
                    notes.push(format!(
                        "the server has {} core(s) beside loadgen's: loop counts above {} share \
                         them, so those points measure contention, not scaling",
                        server.len(),
                        server.len()
                    ));
                }
            }
        }
    }

    let points = points(spec);
    let mut runs: Vec<RunRecord> = Vec::new();
    let mut failures: Vec<RunFailure> = Vec::new();
    let mut progress = None;
    let mut record = |records: Result<Vec<RunRecord>, String>,
                      group: &[usize],
                      point: &PointParams,
                      repeat: u32,
                      notes: &mut Vec<String>| match records {
        Ok(records) => {
            for record in records {
                if !record.server_exit.is_clean() {
                    notes.push(format!(
                        "{} at {point} repeat {repeat}: server stop was not clean: {:?}",
                        record.server, record.server_exit
                    ));
                }
                for warning in &record.summary.warnings {
                    notes.push(format!(
                        "{} at {point} repeat {repeat}: loadgen: {warning}",
                        record.server
                    ));
                }
                runs.push(record);
            }
        }
        Err(error) => {
            for &server in group {
                failures.push(RunFailure {
                    server: spec.servers[server].name.clone(),
                    point: point.clone(),
                    repeat,
                    error: error.clone(),
                });
            }
        }
    };
    match spec.schedule {
        Schedule::Alternating => {
            let slots = schedule(&spec.servers, &spec.variants, &points, spec.repeats);
            let bar = progress.insert(Progress::new(slots.len(), spec));
            for (index, slot) in slots.iter().enumerate() {
                let point = &points[slot.point];
                // The server as it runs over the point's transport (scheduled only where it has
                // a variant for it).
                let Some(server) = spec.server_at(&spec.servers[slot.server], point.transport)
                else {
                    continue;
                };
                let server = &server;
                bar.starting(index, &server.name, point, slot.repeat);
                // Local runs, or the hosts of a multi-host sweep; a lost host ends the sweep
                // (the runs already finished are kept).
                let result = crate::hosts::run_slot(
                    session.as_ref(),
                    server,
                    point,
                    slot.repeat,
                    run_options,
                );
                let stops_sweep = match &result {
                    Err(error) if error.stops_sweep => Some(error.to_string()),
                    _ => None,
                };
                let outcome = result
                    .map(|record| vec![record])
                    .map_err(|error| error.to_string());
                bar.finished(
                    index,
                    &server.name,
                    point,
                    slot.repeat,
                    outcome.as_deref().map_err(String::as_str),
                );
                record(outcome, &[slot.server], point, slot.repeat, &mut notes);
                if let Some(error) = stops_sweep {
                    notes.push(format!(
                        "the sweep stopped after {} of {} runs: {error}",
                        index + 1,
                        slots.len()
                    ));
                    break;
                }
            }
        }
        Schedule::SideBySide => {
            let groups = side_by_side_groups(&spec.servers, &spec.variants, &points, spec.repeats);
            let bar = progress.insert(Progress::new(groups.len(), spec));
            for (index, group) in groups.iter().enumerate() {
                let point = &points[group.point];
                let servers: Vec<ServerSpec> = group
                    .servers
                    .iter()
                    .filter_map(|&i| spec.server_at(&spec.servers[i], point.transport))
                    .collect();
                let names = servers
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" + ");
                bar.starting(index, &names, point, group.repeat);
                let outcome = runner::run_side_by_side(&servers, point, group.repeat, run_options)
                    .map_err(|error| error.to_string());
                bar.finished(
                    index,
                    &names,
                    point,
                    group.repeat,
                    outcome.as_deref().map_err(String::as_str),
                );
                record(outcome, &group.servers, point, group.repeat, &mut notes);
            }
        }
    }
    if let Some(bar) = &progress {
        bar.done();
    }

    let entries: Vec<ServerEntry> = spec
        .servers
        .iter()
        .map(|server| ServerEntry {
            name: server.name.clone(),
            reference: server.reference,
            framing: server.framing.as_str().to_string(),
        })
        .collect();
    let (summaries, summary_notes) = summarize::summarize(&entries, &points, &runs, spec.schedule);
    notes.extend(summary_notes);
    let results = Results {
        schema: SCHEMA.to_string(),
        created: humantime::format_rfc3339_seconds(started_at).to_string(),
        environment,
        spec: spec_record(spec),
        runs,
        summaries,
        failures,
        notes,
        hosts: session.as_ref().map(|session| session.record().clone()),
    };
    let mut env_extra = vec![(
        "spec".to_string(),
        results
            .spec
            .source
            .clone()
            .unwrap_or_else(|| "(built in)".into()),
    )];
    env_extra.extend(
        results
            .hosts
            .as_ref()
            .map_or(Vec::new(), crate::hosts::env_lines),
    );
    let env_txt = env::env_text(&results.environment, &env_extra);
    output::write_all(&dir, &results, &env_txt)
        .with_context(|| format!("cannot write results into {}", dir.display()))?;
    let render_error = if options.render {
        gev_reports::render(&results, &dir)
            .err()
            .map(|error| error.to_string())
    } else {
        None
    };
    Ok(SweepOutcome {
        dir,
        results,
        render_error,
    })
}

/// `harness report DIR`: re-renders plots and pages from `DIR/results.json` into `DIR`; returns
/// the results read and what was rendered.
pub fn report(dir: &Path) -> anyhow::Result<(Results, gev_reports::Rendered)> {
    let results = output::read_results(dir)?;
    let rendered = gev_reports::render(&results, dir)
        .with_context(|| format!("cannot render the report in {}", dir.display()))?;
    Ok((results, rendered))
}

/// Live progress on stderr: point k of n, the last run's throughput, and time left.
struct Progress {
    bar: ProgressBar,
    started: Instant,
    per_run_estimate: Duration,
    total: usize,
    /// The last completed run's throughput, shown while the next one runs.
    last_rps: std::cell::Cell<Option<f64>>,
}

impl Progress {
    fn new(total: usize, spec: &Spec) -> Progress {
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} done · {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress {
            bar,
            started: Instant::now(),
            // Start-up, connect and stop add about half a second to warm-up plus duration.
            per_run_estimate: spec.warmup + spec.duration + Duration::from_millis(500),
            total,
            last_rps: std::cell::Cell::new(None),
        }
    }

    fn time_left(&self, done: usize) -> Duration {
        let per_run = if done == 0 {
            self.per_run_estimate
        } else {
            self.started.elapsed() / done as u32
        };
        per_run * (self.total - done) as u32
    }

    fn starting(&self, index: usize, server: &str, point: &PointParams, repeat: u32) {
        let last = self
            .last_rps
            .get()
            .map_or(String::new(), |rps| format!(" · last {rps:.0} req/s"));
        self.bar.set_message(format!(
            "run {} of {}: {server} {point} #{repeat}{last} · ~{}s left",
            index + 1,
            self.total,
            self.time_left(index).as_secs()
        ));
    }

    fn finished(
        &self,
        index: usize,
        server: &str,
        point: &PointParams,
        repeat: u32,
        outcome: Result<&[RunRecord], &str>,
    ) {
        if let Some(record) = outcome.ok().and_then(|records| records.first()) {
            self.last_rps.set(Some(record.summary.throughput.rps));
        }
        let line = match outcome {
            Ok(records) => {
                let figures: Vec<String> = records
                    .iter()
                    .map(|record| {
                        let cpu = record
                            .server_cpu_us_per_request()
                            .map_or(String::new(), |cpu| format!(", server {cpu:.2} µs CPU/req"));
                        format!(
                            "{}{:.0} req/s, p99 {:.0} µs{cpu}",
                            if records.len() > 1 {
                                format!("{} ", record.server)
                            } else {
                                String::new()
                            },
                            record.summary.throughput.rps,
                            record.summary.latency_us.p99
                        )
                    })
                    .collect();
                format!(
                    "run {}/{}: {server} {point} #{repeat}: {}",
                    index + 1,
                    self.total,
                    figures.join("; ")
                )
            }
            Err(error) => format!(
                "run {}/{}: {server} {point} #{repeat}: FAILED: {error}",
                index + 1,
                self.total
            ),
        };
        // Printed above the bar on a terminal, as plain lines otherwise (CI logs).
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
        self.bar.inc(1);
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gev_reports::results::{PointTls, PointTransport};

    fn server(name: &str, framing: Framing) -> ServerSpec {
        ServerSpec {
            name: name.into(),
            command: "x {port}".into(),
            framing,
            reference: false,
            metrics: false,
        }
    }

    fn spec() -> Spec {
        Spec {
            servers: vec![
                server("a", Framing::Raw),
                server("b", Framing::Raw),
                server("w", Framing::WebSocket),
            ],
            loops: vec![1, 2],
            connections: vec![8],
            payload_sizes: vec![64, 512],
            framings: vec![Framing::Raw, Framing::WebSocket],
            rates: vec![None, Some(100.0)],
            pipeline: 1,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            repeats: 2,
            loadgen_threads: 1,
            pin: true,
            per_point_placement: false,
            schedule: Schedule::Alternating,
            tls: vec![PointTls::Off],
            tls_handshakes: Vec::new(),
            source: None,
            hosts: None,
            transports: vec![PointTransport::Tcp],
            variants: Variants::new(),
        }
    }

    #[test]
    fn transports_are_a_point_dimension_and_servers_run_where_they_have_a_variant() {
        let mut spec = spec();
        spec.framings = vec![Framing::Raw];
        spec.payload_sizes = vec![64];
        spec.loops = vec![1];
        spec.rates = vec![None];
        spec.transports = vec![
            PointTransport::Tcp,
            PointTransport::Unix,
            PointTransport::Udp,
        ];
        spec.variants.insert(
            "a".into(),
            crate::transport_run::TransportCommands {
                unix: Some("a --listen unix:{path}".into()),
                udp: Some("a-udp {port}".into()),
            },
        );
        spec.variants.insert(
            "b".into(),
            crate::transport_run::TransportCommands {
                unix: Some("b --listen unix:{path}".into()),
                udp: None,
            },
        );
        let points = points(&spec);
        let transports: Vec<PointTransport> = points.iter().map(|p| p.transport).collect();
        assert_eq!(transports, spec.transports);
        let slots = schedule(&spec.servers, &spec.variants, &points, 1);
        let at = |point: usize| -> Vec<&str> {
            slots
                .iter()
                .filter(|s| s.point == point)
                .map(|s| spec.servers[s.server].name.as_str())
                .collect()
        };
        assert_eq!(at(0), vec!["a", "b"]);
        assert_eq!(at(1), vec!["a", "b"]);
        assert_eq!(at(2), vec!["a"]);
        let groups = side_by_side_groups(&spec.servers, &spec.variants, &points, 2);
        assert_eq!(groups.len(), 6);
        assert_eq!(groups[4].servers, vec![0]);
        let record = spec_record(&spec);
        assert_eq!(record.transports.len(), 3);
        assert_eq!(
            record.servers[0]
                .transport_commands
                .get("udp")
                .map(String::as_str),
            Some("a-udp {port}")
        );
        assert!(record.servers[2].transport_commands.is_empty());
    }

    #[test]
    fn tls_points_and_their_servers() {
        let mut spec = spec();
        spec.servers.push(ServerSpec {
            command: "/x --port {port} {tls}".into(),
            ..server("t", Framing::Raw)
        });
        spec.framings = vec![Framing::Raw];
        spec.payload_sizes = vec![64];
        spec.loops = vec![1];
        spec.rates = vec![None];
        spec.tls = vec![PointTls::Off, PointTls::On];
        spec.tls_handshakes = vec![PointTls::HandshakesResumed];
        let points = points(&spec);
        let modes: Vec<PointTls> = points.iter().map(|p| p.tls).collect();
        assert_eq!(
            modes,
            vec![PointTls::Off, PointTls::On, PointTls::HandshakesResumed]
        );
        assert_eq!((points[2].payload_size, points[2].pipeline), (0, 1));
        let slots = schedule(&spec.servers, &spec.variants, &points, 1);
        let at = |point: usize| -> Vec<&str> {
            slots
                .iter()
                .filter(|s| s.point == point)
                .map(|s| spec.servers[s.server].name.as_str())
                .collect()
        };
        assert_eq!(at(0), vec!["a", "b", "t"]);
        assert_eq!(at(1), vec!["t"]);
        assert_eq!(at(2), vec!["t"]);
    }

    #[test]
    fn points_cover_the_product() {
        let points = points(&spec());
        assert_eq!(points.len(), 2 * 2 * 2 * 2);
        assert_eq!(points[0].framing, "raw");
        assert_eq!(points[8].framing, "websocket");
    }

    #[test]
    fn http_points_have_one_empty_payload() {
        let mut spec = spec();
        spec.framings = vec![Framing::Http];
        let points = points(&spec);
        assert_eq!(points.len(), 2 * 2);
        assert!(points
            .iter()
            .all(|p| p.payload_size == 0 && p.framing == "http"));
    }

    #[test]
    fn repeats_interleave_across_servers_of_the_framing() {
        let spec = spec();
        let points = points(&spec);
        let slots = schedule(&spec.servers, &spec.variants, &points, spec.repeats);
        // 8 raw points × 2 repeats × 2 servers + 8 websocket points × 2 repeats × 1 server.
        assert_eq!(slots.len(), 32 + 16);
        let first: Vec<(usize, u32)> = slots[..4].iter().map(|s| (s.server, s.repeat)).collect();
        assert_eq!(first, vec![(0, 0), (1, 0), (0, 1), (1, 1)]);
        assert!(slots[32..].iter().all(|s| s.server == 2));
    }

    #[test]
    fn side_by_side_groups_hold_every_server_of_the_framing_and_rotate_the_start() {
        let spec = spec();
        let points = points(&spec);
        let groups = side_by_side_groups(&spec.servers, &spec.variants, &points, spec.repeats);
        // 8 raw points × 2 repeats + 8 websocket points × 2 repeats, one group each.
        assert_eq!(groups.len(), 16 + 16);
        assert_eq!(groups[0].servers, vec![0, 1]);
        assert_eq!(groups[1].servers, vec![1, 0]);
        assert_eq!((groups[1].point, groups[1].repeat), (0, 1));
        assert!(groups[16..].iter().all(|g| g.servers == vec![2]));
    }

    #[test]
    fn the_spec_record_keeps_defaults_applied() {
        let record = spec_record(&spec());
        assert_eq!(record.framings, vec!["raw", "websocket"]);
        assert_eq!(record.rates, vec![None, Some(100.0)]);
        assert_eq!(record.servers.len(), 3);
    }
}
