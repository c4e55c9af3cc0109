//! `harness compare`: the performance-regression gate. Runs a baseline and a candidate server in
//! the same session, with the same load, and says per metric (throughput, p50, p99, and the
//! server's CPU time per request) whether the candidate `regressed`, `improved`, showed
//! `no change`, or whether the runs were too noisy to tell (`inconclusive`). A round with a failed
//! run (a stalled machine) is run again, at most twice per session.
//!
//! Where it sits: flags or a sweep spec -> load points -> **session** (`session.rs`: rounds of
//! both servers, side by side or alternating, each through the harness's runner) -> **analysis**
//! (`analysis.rs`: paired ratio intervals and verdicts, over `stats.rs`) -> optional instruction
//! counts (`callgrind.rs`) -> **report** (`report.rs`: markdown or `--json`) -> exit code.
//!
//! Why side by side is the default schedule: on a shared VM the speed of a core drifts by 10–20%
//! from one second to the next (other tenants, the host), so two runs one after the other differ
//! by that much even for the same binary, and a 10% slowdown drowns unless the session runs for
//! minutes. Run at the same moment on the same cores, both servers see the same drift: in a
//! self-comparison of 20 one-second rounds the per-round log ratio spread 2.3% (throughput),
//! 0.4% (p50) and 0.7% (server CPU per request) side by side, against 11.6%, 13.2% and 9.6% one
//! after the other (`scripts/gate-power.py` measures what this buys on a machine). The price: each
//! server gets a share of the machine, so the absolute figures are not what it does alone, and
//! p99 includes the scheduler switching between the two. `--schedule alternating` keeps the
//! one-after-the-other runs (A B B A ...) for absolute figures; stored baselines are always
//! measured alone.
//!
//! Over TLS (`--tls`): the session makes one throwaway certificate (`tls_cert.rs`), both
//! commands get it through their `{tls}` placeholder and loadgen verifies it with `--ca`
//! (`tls_run.rs`, as a sweep's TLS points do), so e.g. gev-echo and `ref-tokio-tls-echo` are
//! compared serving the same certificate; `scripts/bench-tls.sh` runs issue 14's benchmark so.
//!
//! Exit codes: 0 no metric regressed, 1 at least one regressed (the gate fails), 2 the comparison
//! could not be made (bad flags, a server that does not start or keeps failing, a stored
//! baseline that does not match). Progress goes to stderr, so stdout is only the table (or the
//! JSON).
//!
//! Why a verdict needs six rounds: below [`crate::stats::MIN_ROUNDS_FOR_VERDICT`] (6) rounds per
//! server, even rounds that all moved the same way fail a two-sided 5% sign test (2 · 2^-5 =
//! 6%), so a narrow t interval from them is luck, not evidence (a 2-round self-comparison on a
//! loaded machine once read "regressed"). Such readings are `inconclusive`, with a note;
//! `--until-confident` adds rounds until there are enough.
//!
//! Why the default threshold is 5%: a verdict needs the *whole* 95% interval past the threshold,
//! so a slowdown exactly at the threshold is caught only about half the time. To catch a real 10%
//! slowdown the threshold must sit well below 10%; how often it is caught then depends on how
//! noisy the machine is (the interval's width), which the report shows next to every verdict.

pub mod analysis;
mod point_runner;
pub mod report;
pub mod session;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use gev_reports::results::{PointParams, PointTls};

use crate::baseline::{self, StoredBaseline, StoredPoint};
use crate::callgrind::{self, CallgrindComparison, CallgrindOptions};
use crate::framing::Framing;
use crate::runner;
use crate::spec::{CommandEntry, Context as SpecContext, Spec};
use crate::{tls_cert, tls_run};
use analysis::{Evidence, RunFigures};
use point_runner::PointRunner;
use report::{CompareReport, PointReport};
use session::{Plan, Schedule, Side};

/// Rounds per session that may be run again after a failed run (see `session::Plan`).
const ROUND_RETRIES: usize = 2;

/// Flags of `harness compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// The baseline server's command; `{port}` and `{loops}` are replaced for each run.
    #[arg(long, value_name = "CMD")]
    pub baseline_cmd: Option<String>,
    /// The candidate server's command; `{port}` and `{loops}` are replaced for each run.
    #[arg(long, value_name = "CMD")]
    pub candidate_cmd: String,
    /// Sweep spec (TOML) whose load points are compared: its loops, connections, payload
    /// sizes, rates, pipeline, duration, warm-up, loadgen threads and pinning. Its servers,
    /// framings and repeats are not used (the two commands, --framing and --repeats are).
    /// A spec whose `transports` go beyond TCP is refused: the two commands are TCP servers.
    /// Without it, one point from --loops, --connections, --size, --duration and --warmup.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// What both servers speak (loadgen's --framing): raw, length, websocket or http.
    #[arg(long, value_name = "FRAMING", default_value = "raw")]
    pub framing: Framing,
    /// Threshold in percent: a metric regressed only when its whole 95% interval is worse than
    /// this (and improved only when wholly better).
    #[arg(long, value_name = "PERCENT", default_value_t = 5.0)]
    pub max_regression: f64,
    /// How each round runs the two servers: `side-by-side` (both at once, sharing the server
    /// cores, each with its own loadgen: the machine's noise hits both alike, so the ratios are
    /// tight on a noisy machine) or `alternating` (one after the other, A B B A …, each alone:
    /// absolute figures, noisier ratios).
    #[arg(long, value_name = "SCHEDULE", value_enum, default_value_t = Schedule::SideBySide)]
    pub schedule: Schedule,
    /// Rounds (runs of each server) per point before the first reading. Even, so each server
    /// goes first equally often. At least 6 for the gate to be able to say `regressed` or
    /// `improved`: with fewer, even rounds that all agree fail a two-sided 5% sign test
    /// (2 · 2^-5 = 6%), so their t interval rests on luck and every such reading is reported
    /// `inconclusive` instead (--until-confident adds rounds until 6).
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub repeats: usize,
    /// While any verdict is inconclusive, add runs (two rounds at a time) up to --max-repeats;
    /// stops early once a metric has regressed (the gate has failed either way).
    #[arg(long)]
    pub until_confident: bool,
    /// The cap on runs per server per point with --until-confident.
    #[arg(long, value_name = "M", default_value_t = 15)]
    pub max_repeats: usize,
    /// Print the report as JSON (schema gev-compare/1) instead of markdown.
    #[arg(long)]
    pub json: bool,
    /// Store the candidate's runs as baseline NAME (in --baselines-dir); without --baseline-cmd
    /// or --baseline, only measures and stores.
    #[arg(long, value_name = "NAME")]
    pub save_baseline: Option<String>,
    /// Compare against stored baseline NAME instead of running a baseline server (weaker
    /// evidence: different sessions).
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,
    /// Where stored baselines live.
    #[arg(long, value_name = "DIR", default_value = baseline::DEFAULT_DIR)]
    pub baselines_dir: PathBuf,
    /// Also count instructions per echoed message under valgrind's callgrind (one loop),
    /// baseline vs candidate; needs an echo server and valgrind.
    #[arg(long)]
    pub callgrind: bool,
    /// Ping-pongs the callgrind count is divided over.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub callgrind_messages: u64,
    /// Event loops of the server.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub loops: u32,
    /// Client connections.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub connections: u64,
    /// Payload bytes per request.
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub size: u64,
    /// Measured time of each run.
    #[arg(long, value_name = "TIME", default_value = "2s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Warm-up before measuring, each run.
    #[arg(long, value_name = "TIME", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Compare over TLS: one throwaway self-signed certificate (localhost, 127.0.0.1, ::1) is
    /// made for the session, each command's `{tls}` placeholder becomes `--tls-cert PEM
    /// --tls-key PEM` (both commands must carry it), and loadgen runs with `--tls --ca PEM`,
    /// verifying the servers as a real client would. Without --tls, `{tls}` is dropped.
    #[arg(long)]
    pub tls: bool,
}

/// Runs `harness compare` and returns the process exit code (0 pass, 1 regressed, 2 error).
/// Errors are printed here, as one line naming the flag, file or server involved, so the exit
/// code is the gate's whatever the caller does with it.
pub fn run(args: CompareArgs) -> anyhow::Result<i32> {
    match compare(&args) {
        Ok(code) => Ok(code),
        Err(error) => {
            eprintln!("harness compare: error: {error:#}");
            Ok(2)
        }
    }
}

/// What the flags ask for.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    /// Run both servers here (side by side or alternating, by `--schedule`).
    SameRun { baseline_cmd: String },
    /// Run the candidate; read the baseline's runs from a stored file.
    AgainstStored { name: String },
    /// Only measure the candidate and store it (`--save-baseline` alone).
    MeasureOnly,
}

/// One load setting both servers are run at.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparePoint {
    /// How the point is named in tables and stored baselines: the load and the run length.
    pub label: String,
    pub params: PointParams,
}

impl ComparePoint {
    fn new(params: PointParams) -> ComparePoint {
        ComparePoint {
            label: format!("{params}, {} s", params.duration_secs),
            params,
        }
    }
}

/// The points and how runs are made.
struct Setup {
    points: Vec<ComparePoint>,
    runner: PointRunner,
    /// With --tls: the directory holding the session's certificate, removed when dropped.
    _tls_dir: Option<tempfile::TempDir>,
}

fn compare(args: &CompareArgs) -> anyhow::Result<i32> {
    let mode = validate(args)?;
    let Setup {
        points,
        runner,
        _tls_dir,
    } = setup(args)?;
    let stored = match &mode {
        Mode::AgainstStored { name } => Some(stored_runs(args, name, &points)?),
        Mode::SameRun { .. } => None,
        Mode::MeasureOnly => return measure_only(args, &points, &runner),
    };
    let plan = Plan {
        schedule: args.schedule,
        repeats: args.repeats,
        until_confident: args.until_confident,
        max_repeats: args.max_repeats.max(args.repeats),
        threshold: args.max_regression / 100.0,
        round_retries: ROUND_RETRIES,
    };
    let baseline_cmd = match &mode {
        Mode::SameRun { baseline_cmd } => baseline_cmd.clone(),
        _ => String::new(),
    };
    let load_at_start = load_average();
    let mut host = None;
    let outcome = session::run_session::<anyhow::Error>(
        &plan,
        points.len(),
        stored.as_ref().map(|(_, runs)| runs.as_slice()),
        |sides, index, round| {
            let servers: Vec<(&str, &str)> = sides
                .iter()
                .map(|side| match side {
                    Side::Baseline => ("baseline", baseline_cmd.as_str()),
                    Side::Candidate => ("candidate", args.candidate_cmd.as_str()),
                })
                .collect();
            let point = &points[index];
            let names: Vec<&str> = servers.iter().map(|(name, _)| *name).collect();
            let (figures, run_host) = runner
                .run_side_by_side(&servers, &point.params, round as u32)
                .with_context(|| {
                    format!("{} run {} at {}", names.join(" + "), round + 1, point.label)
                })?;
            host.get_or_insert(run_host);
            for ((name, _), figures) in servers.iter().zip(&figures) {
                eprintln!(
                    "harness compare: round {} {} {name}: {:.0} req/s, p50 {:.0} µs, p99 {:.0} \
                     µs, server CPU {} µs/req",
                    round + 1,
                    point.label,
                    figures.throughput_rps,
                    figures.p50_us,
                    figures.p99_us,
                    figures
                        .server_cpu_us_per_request
                        .map_or("?".to_string(), |cpu| format!("{cpu:.2}"))
                );
            }
            Ok(figures)
        },
    )?;

    let callgrind = match (&mode, args.callgrind) {
        (Mode::SameRun { baseline_cmd }, true) => Some(count_instructions(args, baseline_cmd)?),
        _ => None,
    };

    let mut notes = vec![format!("placement: {}", runner.pinning())];
    if let (Some(start), Some(end)) = (load_at_start, load_average()) {
        notes.push(format!(
            "machine load (1-minute average): {start} at the start, {end} at the end"
        ));
    }
    for (round, error) in &outcome.retried {
        notes.push(format!(
            "round {} was run again after a failed run: {error}",
            round + 1
        ));
    }
    if outcome.rounds < crate::stats::MIN_ROUNDS_FOR_VERDICT {
        notes.push(format!(
            "{} round(s) per server: fewer than the {} a verdict needs (below that even rounds \
             that all agree fail a 5% sign test), so no metric can read `regressed` or \
             `improved`; use --repeats {} or more",
            outcome.rounds,
            crate::stats::MIN_ROUNDS_FOR_VERDICT,
            crate::stats::MIN_ROUNDS_FOR_VERDICT
        ));
    }
    if outcome.capped_while_inconclusive {
        notes.push(format!(
            "still inconclusive after {} runs per server (--max-repeats): the machine was too \
             noisy to tell a {}% change",
            outcome.rounds, args.max_regression
        ));
    }
    if args.callgrind && callgrind.is_none() {
        notes.push(
            "instruction counts need a baseline server to run (--baseline-cmd); skipped".into(),
        );
    }
    let schedule = stored.is_none().then_some(args.schedule);
    let (evidence, baseline_label) = match &stored {
        Some((stored, _)) => (
            Evidence::StoredBaseline,
            format!(
                "stored baseline `{}` (`{}`, taken {}, commit {}, on {})",
                stored.name,
                stored.command,
                stored.created,
                stored.git_commit.as_deref().unwrap_or("unknown"),
                stored.host
            ),
        ),
        None => (Evidence::SameRunPaired, baseline_cmd.clone()),
    };
    let point_reports: Vec<PointReport> = outcome
        .points
        .into_iter()
        .zip(&points)
        .map(|(outcome, point)| PointReport {
            point: point.label.clone(),
            metrics: outcome.metrics,
            baseline_runs: outcome.baseline_runs,
            candidate_runs: outcome.candidate_runs,
        })
        .collect();
    let regressed = point_reports
        .iter()
        .flat_map(|p| &p.metrics)
        .any(|m| m.verdict == crate::stats::Verdict::Regressed);
    let report = CompareReport {
        schema: report::SCHEMA.to_string(),
        evidence,
        schedule,
        baseline: baseline_label,
        candidate: args.candidate_cmd.clone(),
        threshold_percent: args.max_regression,
        repeats: outcome.rounds,
        points: point_reports,
        callgrind,
        regressed,
        notes,
    };
    if let Some(name) = &args.save_baseline {
        let runs = report
            .points
            .iter()
            .map(|p| (p.point.clone(), p.candidate_runs.clone()))
            .collect();
        save_baseline(args, name, runs, host.unwrap_or_default())?;
    }
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_markdown());
    }
    Ok(i32::from(report.regressed))
}

/// Checks the flags before anything long starts; every error names the flag.
fn validate(args: &CompareArgs) -> anyhow::Result<Mode> {
    if !(args.max_regression > 0.0 && args.max_regression < 100.0) {
        bail!(
            "--max-regression must be a percentage between 0 and 100 (exclusive), got {}",
            args.max_regression
        );
    }
    if args.repeats < 2 {
        bail!(
            "--repeats must be at least 2 (an interval needs two runs of each server), got {}",
            args.repeats
        );
    }
    if args.until_confident && args.max_repeats < args.repeats {
        bail!(
            "--max-repeats ({}) must be at least --repeats ({})",
            args.max_repeats,
            args.repeats
        );
    }
    if args.save_baseline.is_some()
        && args.baseline_cmd.is_some()
        && args.schedule == Schedule::SideBySide
    {
        bail!(
            "--save-baseline next to --baseline-cmd needs --schedule alternating: side-by-side \
             runs share the machine with the baseline, so their figures would not match a later \
             run of the candidate alone"
        );
    }
    if args.callgrind_messages == 0 {
        bail!("--callgrind-messages must be at least 1");
    }
    if args.loops == 0 || args.connections == 0 {
        bail!("--loops and --connections must be at least 1");
    }
    check_command("--candidate-cmd", &args.candidate_cmd)?;
    if args.tls {
        check_tls_command("--candidate-cmd", &args.candidate_cmd)?;
        if let Some(command) = &args.baseline_cmd {
            check_tls_command("--baseline-cmd", command)?;
        }
        if args.callgrind {
            bail!("--callgrind counts instructions of plain echo only; drop --tls or --callgrind");
        }
    }
    for name in [&args.baseline, &args.save_baseline].into_iter().flatten() {
        baseline::validate_name(name)?;
    }
    match (&args.baseline_cmd, &args.baseline) {
        (Some(_), Some(_)) => bail!("give either --baseline-cmd or --baseline, not both"),
        (Some(command), None) => {
            check_command("--baseline-cmd", command)?;
            Ok(Mode::SameRun {
                baseline_cmd: command.clone(),
            })
        }
        (None, Some(name)) => Ok(Mode::AgainstStored { name: name.clone() }),
        (None, None) if args.save_baseline.is_some() => Ok(Mode::MeasureOnly),
        (None, None) => bail!(
            "nothing to compare against: give --baseline-cmd or --baseline \
             (or only --save-baseline NAME to measure and store the candidate)"
        ),
    }
}

fn check_command(flag: &str, command: &str) -> anyhow::Result<()> {
    if command.split_whitespace().next().is_none() {
        bail!("{flag} is empty");
    }
    if !command.contains("{port}") {
        bail!("{flag} {command:?} has no {{port}} placeholder: each run needs a free port, e.g. `gev-echo --port {{port}} --loops {{loops}}`");
    }
    Ok(())
}

/// With --tls a server command must say where the certificate flags go.
fn check_tls_command(flag: &str, command: &str) -> anyhow::Result<()> {
    if !command.contains(tls_run::PLACEHOLDER) {
        bail!(
            "{flag} {command:?} has no {} placeholder, but --tls needs one for the certificate \
             flags (it becomes `--tls-cert PEM --tls-key PEM`), e.g. `gev-echo --port {{port}} \
             --loops {{loops}} {}`",
            tls_run::PLACEHOLDER,
            tls_run::PLACEHOLDER
        );
    }
    Ok(())
}

/// The points to compare and the runner they use; with --tls, every point over TLS and the
/// runner given the session's certificate.
fn setup(args: &CompareArgs) -> anyhow::Result<Setup> {
    let Setup {
        mut points,
        mut runner,
        ..
    } = plain_setup(args)?;
    if !args.tls {
        return Ok(Setup {
            points,
            runner,
            _tls_dir: None,
        });
    }
    let dir = tempfile::Builder::new()
        .prefix("harness-compare-tls")
        .tempdir()
        .context("cannot create a directory for the TLS certificate")?;
    let files = tls_cert::write_self_signed(dir.path())?;
    runner.set_tls_cert(files);
    for point in &mut points {
        point.params.tls = PointTls::On;
        *point = ComparePoint::new(point.params.clone());
    }
    Ok(Setup {
        points,
        runner,
        _tls_dir: Some(dir),
    })
}

/// The points to compare (from the spec, or one from the flags) and the runner they use.
fn plain_setup(args: &CompareArgs) -> anyhow::Result<Setup> {
    let Some(path) = &args.spec else {
        let params = PointParams {
            loops: args.loops,
            framing: args.framing.as_str().to_string(),
            connections: args.connections,
            payload_size: args.size,
            pipeline: 1,
            rate: None,
            duration_secs: args.duration.as_secs_f64(),
            warmup_secs: args.warmup.as_secs_f64(),
            tls: Default::default(),
            transport: Default::default(),
        };
        return Ok(Setup {
            points: vec![ComparePoint::new(params)],
            runner: PointRunner::new(args.framing, true, 1)?,
            _tls_dir: None,
        });
    };
    refuse_other_transports(path)?;
    // The two commands stand in for the spec's servers, so a spec that names none still loads.
    let ours: Vec<CommandEntry> = [
        ("baseline", &args.baseline_cmd),
        ("candidate", &Some(args.candidate_cmd.clone())),
    ]
    .into_iter()
    .filter_map(|(name, command)| {
        command.as_ref().map(|command| CommandEntry {
            name: format!("compare-{name}"),
            command: command.clone(),
            framing: Some(args.framing.as_str().to_string()),
            reference: false,
        })
    })
    .collect();
    let context = SpecContext {
        bin_dir: runner::bin_dir()?,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
    };
    let spec = Spec::load(path, &ours, &context)?;
    let mut points = Vec::new();
    for &loops in &spec.loops {
        for &connections in &spec.connections {
            for &payload_size in &spec.payload_sizes {
                for &rate in &spec.rates {
                    points.push(ComparePoint::new(PointParams {
                        loops,
                        framing: args.framing.as_str().to_string(),
                        connections,
                        payload_size,
                        pipeline: spec.pipeline,
                        rate,
                        duration_secs: spec.duration.as_secs_f64(),
                        warmup_secs: spec.warmup.as_secs_f64(),
                        tls: Default::default(),
                        transport: Default::default(),
                    }));
                }
            }
        }
    }
    Ok(Setup {
        points,
        runner: PointRunner::new(args.framing, spec.pin, spec.loadgen_threads)?,
        _tls_dir: None,
    })
}

/// Refuses a spec whose `transports` name more than TCP. The two commands are TCP command
/// templates (`{port}`): at a Unix-socket or UDP point a sweep runs each server's variant for
/// that transport (another program, `gev-udp-echo`, or other flags, `--listen unix:{path}`),
/// which compare has no command for, so it would gate a program nobody gave it; comparing only
/// the TCP points instead would pass a gate over transports never measured. Read before the
/// spec is loaded, whose own checks would name the stand-in servers instead.
fn refuse_other_transports(path: &std::path::Path) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(()); // Spec::load reports it, naming the file.
    };
    let Ok(table) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let others: Vec<&str> = table
        .get("transports")
        .and_then(toml::Value::as_array)
        .map(|list| list.iter().filter_map(toml::Value::as_str).collect())
        .unwrap_or_default();
    let others: Vec<&str> = others.into_iter().filter(|t| *t != "tcp").collect();
    if !others.is_empty() {
        anyhow::bail!(
            "{}: `transports` has {}, but compare runs --baseline-cmd and --candidate-cmd over TCP only: compare with transports = [\"tcp\"] and use `harness sweep` for the other transports",
            path.display(),
            others.join(" and ")
        );
    }
    Ok(())
}

/// The stored baseline and, per point, its runs; refuses points it did not measure.
fn stored_runs(
    args: &CompareArgs,
    name: &str,
    points: &[ComparePoint],
) -> anyhow::Result<(StoredBaseline, Vec<Vec<RunFigures>>)> {
    let stored = baseline::load(&args.baselines_dir, name)?;
    let mut runs = Vec::with_capacity(points.len());
    for point in points {
        match stored.runs_for(&point.label) {
            Some(found) if found.len() >= 2 => runs.push(found.to_vec()),
            Some(found) => bail!(
                "stored baseline {name:?} has only {} run(s) at `{}`; an interval needs at least 2 \
                 (re-save it with --repeats 2 or more)",
                found.len(),
                point.label
            ),
            None => {
                let known: Vec<&str> = stored.points.iter().map(|p| p.point.as_str()).collect();
                bail!(
                    "stored baseline {name:?} has no runs at `{}` (it has: {}); compare with the \
                     same load settings or re-save the baseline",
                    point.label,
                    known.join("; ")
                )
            }
        }
    }
    Ok((stored, runs))
}

/// `--save-baseline` alone: run the candidate, store its runs, print what was stored.
fn measure_only(
    args: &CompareArgs,
    points: &[ComparePoint],
    runner: &PointRunner,
) -> anyhow::Result<i32> {
    let mut host = None;
    let mut stored_points = Vec::with_capacity(points.len());
    for point in points {
        let mut runs = Vec::with_capacity(args.repeats);
        for round in 0..args.repeats {
            let (figures, run_host) = runner
                .run(
                    "candidate",
                    &args.candidate_cmd,
                    &point.params,
                    round as u32,
                )
                .with_context(|| format!("candidate run {} at {}", round + 1, point.label))?;
            host.get_or_insert(run_host);
            eprintln!(
                "harness compare: run {} {}: {:.0} req/s",
                round + 1,
                point.label,
                figures.throughput_rps
            );
            runs.push(figures);
        }
        stored_points.push((point.label.clone(), runs));
    }
    let name = args.save_baseline.as_deref().unwrap_or_default();
    let stored = save_baseline(args, name, stored_points, host.unwrap_or_default())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stored)?);
    } else {
        println!("## gev baseline `{name}` stored\n");
        println!("`{}`, {} runs per point.\n", stored.command, args.repeats);
        println!(
            "| point | median throughput (req/s, 95% CI) | median p50 (µs) | median p99 (µs) |"
        );
        println!("|---|---|---:|---:|");
        for point in &stored.points {
            let throughput: Vec<f64> = point.runs.iter().map(|r| r.throughput_rps).collect();
            let p50: Vec<f64> = point.runs.iter().map(|r| r.p50_us).collect();
            let p99: Vec<f64> = point.runs.iter().map(|r| r.p99_us).collect();
            let interval = crate::stats::bootstrap_median_ci(&throughput, &Default::default())?;
            println!(
                "| {} | {:.0} [{:.0}, {:.0}] | {:.1} | {:.1} |",
                point.point,
                interval.point,
                interval.low,
                interval.high,
                crate::stats::median(&p50)?,
                crate::stats::median(&p99)?
            );
        }
    }
    Ok(0)
}

fn save_baseline(
    args: &CompareArgs,
    name: &str,
    runs: Vec<(String, Vec<RunFigures>)>,
    host: String,
) -> anyhow::Result<StoredBaseline> {
    let stored = StoredBaseline {
        schema: baseline::SCHEMA.to_string(),
        name: name.to_string(),
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        command: args.candidate_cmd.clone(),
        git_commit: git_commit(),
        host,
        points: runs
            .into_iter()
            .map(|(point, runs)| StoredPoint { point, runs })
            .collect(),
    };
    let path = baseline::save(&args.baselines_dir, &stored)?;
    eprintln!(
        "harness compare: stored baseline {name:?} in {}",
        path.display()
    );
    Ok(stored)
}

/// The 1-minute load average from /proc/loadavg, to show how busy the machine was.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_string)
}

fn git_commit() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Instructions per message of both servers, one loop each, under callgrind.
fn count_instructions(
    args: &CompareArgs,
    baseline_cmd: &str,
) -> anyhow::Result<CallgrindComparison> {
    let options = CallgrindOptions {
        messages: args.callgrind_messages,
        ..CallgrindOptions::default()
    };
    let measure = |name: &str, command: &str| {
        eprintln!("harness compare: counting instructions of the {name} under callgrind");
        callgrind::measure(&callgrind_argv(command), &options)
            .with_context(|| format!("callgrind run of the {name} `{command}`"))
    };
    let baseline = measure("baseline", baseline_cmd)?;
    let candidate = measure("candidate", &args.candidate_cmd)?;
    Ok(CallgrindComparison::new(baseline, candidate))
}

/// The server command as argv for callgrind: one loop, port 0 (the `listening on` line gives
/// the port), split on whitespace.
fn callgrind_argv(command: &str) -> Vec<String> {
    command
        .replace("{port}", "0")
        .replace("{loops}", "1")
        .replace(tls_run::PLACEHOLDER, "")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}
