//! `harness soak [SPEC] --duration D`: does a server stay healthy for minutes under a mix of
//! well-behaved and misbehaving clients?
//!
//! For each server of the spec, one after the other: a clean window with the well-behaved load
//! alone (the baseline), a mixed window where misbehaving clients (`loadgen --misbehave`) join,
//! a window with the misbehaving clients alone, and a recovery window with no client; RSS, CPU,
//! descriptors and connections are sampled every second. Each server gets a verdict
//! ([`verdict`]): well-behaved p99 and throughput against the clean window, the memory slope
//! with its interval, descriptors back to the idle baseline, CPU with only misbehaving clients,
//! and whether it is still alive. Output: `<out>/soak-<timestamp>/soak.json`, one figure per
//! server (`soak-<server>.png`/`.svg`), and a table on stdout. Exit 0 when every server passes,
//! 1 when one fails, 2 when nothing could be run (bad spec or flag, missing binary).
//!
//! Data path: [`spec`] -> [`session`] (processes, one clock) -> [`sampler`] every second ->
//! [`record`] -> [`verdict`] (with [`fit`]) -> [`render`] (plots via `gev_reports::plot::soak`).

pub mod fit;
pub mod record;
pub mod render;
pub mod sampler;
pub mod session;
pub mod spec;
pub mod verdict;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;

use crate::builtin;
use crate::pinning::Pinning;
use crate::runner::{self, RunOptions, ServerSpec};
use record::{SoakFile, SpecEcho, SOAK_SCHEMA};
use spec::{SoakSpec, DEFAULT_SOAK_SPEC};

/// Flags of `harness soak`.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// The soak spec (TOML).
    #[arg(default_value = DEFAULT_SOAK_SPEC)]
    pub spec: PathBuf,
    /// Length of each server's soak, e.g. 60s or 10m (overrides the spec's `duration`).
    #[arg(long, value_name = "D")]
    pub duration: Option<String>,
    /// Add a server: `[NAME=]COMMAND` with `{port}` and `{loops}` placeholders, split on
    /// whitespace (raw framing). Repeatable.
    #[arg(long, value_name = "[NAME=]CMD")]
    pub server_cmd: Vec<String>,
    /// Soak only these servers of the spec (repeatable; default all).
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,
    /// Create the output directory under this directory.
    #[arg(long, value_name = "DIR", default_value = crate::cli::DEFAULT_OUT)]
    pub out: PathBuf,
    /// Where the built-in servers and loadgen are (default: this binary's directory).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Do not pin server and loadgen to disjoint cores.
    #[arg(long)]
    pub no_pin: bool,
    /// No plots, soak.json only.
    #[arg(long)]
    pub no_render: bool,
}

/// What `harness soak` did: the output directory and whether every server passed.
#[derive(Debug)]
pub struct SoakOutcome {
    pub dir: PathBuf,
    pub file: SoakFile,
    pub all_pass: bool,
    /// Rendering failed (the soak itself is still valid).
    pub render_error: Option<String>,
}

/// Everything checked before the first server starts. Errors here mean exit 2.
pub fn prepare(
    args: &SoakArgs,
) -> anyhow::Result<(SoakSpec, Vec<ServerSpec>, RunOptions, Duration)> {
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => runner::bin_dir()?,
    };
    let loadgen = runner::loadgen_in(&bin_dir)?;
    let spec = SoakSpec::load(&args.spec)?;
    let duration = match &args.duration {
        Some(text) => humantime::parse_duration(text)
            .ok()
            .filter(|d| *d >= Duration::from_secs(10))
            .with_context(|| {
                format!("--duration {text:?}: write a time of at least 10s, e.g. 60s or 10m")
            })?,
        None => spec.duration,
    };
    let mut servers = Vec::new();
    for name in &spec.servers {
        let found = builtin::find(name).with_context(|| {
            format!(
                "soak spec {}: unknown server {name:?}; built-ins are {}",
                args.spec.display(),
                builtin::names()
            )
        })?;
        servers.push(ServerSpec {
            name: found.name.to_string(),
            command: found.command(&bin_dir),
            framing: found.framing,
            reference: found.reference,
            metrics: found.has_metrics,
        });
    }
    for text in &args.server_cmd {
        let entry = crate::spec::parse_server_cmd(text).map_err(anyhow::Error::msg)?;
        servers.push(ServerSpec {
            name: entry.name,
            command: entry.command,
            framing: crate::framing::Framing::Raw,
            reference: false,
            metrics: false,
        });
    }
    if !args.only.is_empty() {
        for name in &args.only {
            if !servers.iter().any(|s| &s.name == name) {
                anyhow::bail!("--only {name:?} names no server of the soak");
            }
        }
        servers.retain(|s| args.only.contains(&s.name));
    }
    if servers.is_empty() {
        anyhow::bail!("no server to soak: list servers in the spec or give --server-cmd");
    }
    let pinning = Pinning::plan(!args.no_pin, spec.loadgen_threads as usize);
    let options = RunOptions::new(loadgen, pinning);
    Ok((spec, servers, options, duration))
}

/// Soak every server and write the output directory.
pub fn run(args: &SoakArgs) -> anyhow::Result<SoakOutcome> {
    let (spec, servers, options, duration) = prepare(args)?;
    run_prepared(args, &spec, &servers, &options, duration)
}

/// The soak after [`prepare`]: runtime failures (a server that never starts) are errors here.
pub fn run_prepared(
    args: &SoakArgs,
    spec: &SoakSpec,
    servers: &[ServerSpec],
    options: &RunOptions,
    duration: Duration,
) -> anyhow::Result<SoakOutcome> {
    let started = SystemTime::now();
    let dir = crate::output::create_run_dir(&args.out, started)
        .with_context(|| format!("creating an output directory under {}", args.out.display()))?;
    let dir = {
        // `create_run_dir` names it by timestamp; prefix it so soaks and sweeps tell apart.
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let renamed = dir.with_file_name(format!("soak-{name}"));
        std::fs::rename(&dir, &renamed)
            .map(|()| renamed)
            .unwrap_or(dir)
    };
    let mut file = SoakFile {
        schema: SOAK_SCHEMA.to_string(),
        started: humantime::format_rfc3339_seconds(started).to_string(),
        spec: SpecEcho {
            path: args.spec.display().to_string(),
            duration_secs: duration.as_secs_f64(),
            connections: spec.connections as u64,
            well_behaved_connections: spec.well_behaved_connections() as u64,
            misbehaving_connections: spec.misbehaving_connections() as u64,
            rate: spec.rate,
            size: spec.size as u64,
            loops: spec.loops,
            mix: spec.loadgen_mix(),
        },
        pinning: format!(
            "{}; misbehaving loadgen at nice +{}",
            options.pinning.describe(),
            session::MISBEHAVING_NICE
        ),
        servers: Vec::new(),
    };
    for server in servers {
        let soaked = session::soak_server(spec, server, options, duration, true)
            .with_context(|| format!("soaking {}", server.name))?;
        file.servers.push(soaked);
        // Written after every server so a long soak cut short keeps what it measured.
        file.write(&dir.join("soak.json"))
            .with_context(|| format!("writing {}", dir.join("soak.json").display()))?;
    }
    let render_error = if args.no_render {
        None
    } else {
        render::render_all(&file.servers, &dir)
            .err()
            .map(|e| e.to_string())
    };
    let all_pass = file.servers.iter().all(|s| s.verdict.pass);
    Ok(SoakOutcome {
        dir,
        file,
        all_pass,
        render_error,
    })
}

/// The table `harness soak` prints: one block per server, one line per check.
pub fn table(file: &SoakFile) -> String {
    let mut out = String::new();
    for server in &file.servers {
        let v = &server.verdict;
        let _ = writeln!(
            out,
            "{}: {} (exit: {})",
            server.name,
            if v.pass { "PASS" } else { "FAIL" },
            server.exit
        );
        for check in &v.checks {
            let _ = writeln!(
                out,
                "  {:<5} {:<12} {}",
                if check.pass { "ok" } else { "FAIL" },
                check.name,
                check.detail
            );
        }
        if let Some(m) = &server.misbehaving {
            let kinds: Vec<String> = m
                .kinds
                .iter()
                .map(|k| {
                    format!(
                        "{} {}x{} (server closed {})",
                        k.kind, k.connections, k.connects, k.closed_by_server
                    )
                })
                .collect();
            let _ = writeln!(out, "  misbehaving: {}", kinds.join(", "));
        }
        for warning in &server.well_behaved_warnings {
            let _ = writeln!(out, "  well-behaved loadgen: {warning}");
        }
        for note in &server.notes {
            let _ = writeln!(out, "  note: {note}");
        }
    }
    out
}
