//! The `harness` binary: parses the command line and dispatches to the sweep, the report
//! renderer or the regression gate. Every failure is one line on stderr and a non-zero exit:
//! 2 for a bad spec or flag (nothing was run), 1 for a sweep whose runs did not all complete.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use gev_harness::cli::{Cli, Command, ReportArgs, SweepArgs};
use gev_harness::pinning::Pinning;
use gev_harness::runner::{self, RunOptions};
use gev_harness::spec::{self, Spec};
use gev_harness::{compare, output, sweep};

/// Notes printed after the sweep's table.
const MAX_NOTES_SHOWN: usize = 5;

/// Appends one line to the report a command prints at its end.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

/// Prints a command's report; a closed stdout (`| head`) is not an error worth a panic.
fn emit(out: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Sweep(args) => run_sweep(&args),
        Command::Report(args) => run_report(&args),
        Command::Soak(args) => run_soak(&args),
        Command::Compare(args) => match compare::run(args) {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(2)),
            Err(error) => {
                eprintln!("harness compare: error: {error:#}");
                ExitCode::from(2)
            }
        },
    }
}

fn run_sweep(args: &SweepArgs) -> ExitCode {
    let prepared = match prepare(args) {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!("harness sweep: error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let (spec, run_options) = prepared;
    let options = sweep::SweepOptions {
        out_root: args.out.clone(),
        workspace: std::env::current_dir().unwrap_or_else(|_| Path::new(".").to_path_buf()),
        render: !args.no_render,
    };
    let outcome = match sweep::run(&spec, &run_options, &options) {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("harness sweep: error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let mut out = String::new();
    // The verdict first: what limited each point and what the server costs against the
    // references; the table after it, then the notes folded to one line per kind.
    for line in gev_reports::verdict::verdict_lines(&outcome.results) {
        say!(out, "{line}");
    }
    say!(out, "");
    say!(out, "{}", output::table(&outcome.results));
    let folded = gev_reports::verdict::fold_notes(&outcome.results.notes);
    for note in folded.iter().take(MAX_NOTES_SHOWN) {
        say!(out, "note: {note}");
    }
    if folded.len() > MAX_NOTES_SHOWN {
        say!(
            out,
            "note: ... and {} more kinds in results.json",
            folded.len() - MAX_NOTES_SHOWN
        );
    }
    for failure in &outcome.results.failures {
        say!(
            out,
            "FAILED: {} at {} repeat {}: {}",
            failure.server,
            failure.point,
            failure.repeat,
            failure.error
        );
    }
    if let Some(error) = &outcome.render_error {
        say!(out, "report rendering failed: {error}");
    }
    say!(out, "results in {}", outcome.dir.display());
    emit(&out);
    if outcome.all_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Everything checked before the first server starts: the binaries, the spec, the pinning.
fn prepare(args: &SweepArgs) -> anyhow::Result<(Spec, RunOptions)> {
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => runner::bin_dir()?,
    };
    let loadgen = runner::loadgen_in(&bin_dir)?;
    let extra = args
        .server_cmd
        .iter()
        .map(|text| spec::parse_server_cmd(text).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cores = gev_harness::pinning::allowed_cores()
        .map(|cores| cores.len())
        .unwrap_or(1) as u32;
    let mut spec = Spec::load(&args.spec, &extra, &spec::Context { bin_dir, cores })?;
    if let Some(schedule) = args.schedule {
        spec.schedule = schedule;
    }
    if let Some(path) = &args.hosts {
        spec.hosts = Some(gev_harness::hosts::Hosts::load(path)?);
    }
    if spec.hosts.is_some() && spec.schedule == spec::Schedule::SideBySide {
        anyhow::bail!(
            "schedule side-by-side runs every server on this machine's cores at once and cannot be \
             combined with [hosts]; multi-host sweeps run alternating (drop --schedule or the spec's \
             `schedule` key)"
        );
    }
    let pinning = match &spec.hosts {
        Some(_) => Pinning::Unpinned(
            "multi-host sweep: server and loadgen are pinned on their hosts by `cpus` in [hosts]"
                .into(),
        ),
        None => Pinning::plan(spec.pin, spec.loadgen_threads as usize),
    };
    let mut options = RunOptions::new(loadgen, pinning);
    options.loadgen_threads = spec.loadgen_threads;
    if spec.per_point_placement && spec.hosts.is_none() {
        // The split follows each point's loop count; a machine whose affinity cannot be read
        // keeps the fixed plan above (which says why it is unpinned).
        options.per_point_cores = gev_harness::pinning::allowed_cores().ok();
    }
    Ok((spec, options))
}

fn run_report(args: &ReportArgs) -> ExitCode {
    match sweep::report(&args.dir).context("harness report") {
        Ok((results, rendered)) => {
            let mut out = String::new();
            for line in gev_reports::verdict::verdict_lines(&results) {
                say!(out, "{line}");
            }
            say!(out, "");
            say!(out, "{}", output::table(&results));
            for note in &rendered.notes {
                say!(out, "note: {note}");
            }
            say!(
                out,
                "rendered {} plots, {} and {}",
                rendered.plots.len(),
                rendered.report_md.display(),
                rendered.index_html.display()
            );
            emit(&out);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("harness report: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run_soak(args: &gev_harness::soak::SoakArgs) -> ExitCode {
    use gev_harness::soak;
    let prepared = match soak::prepare(args) {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!("harness soak: error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let (spec, servers, options, duration) = prepared;
    let outcome = match soak::run_prepared(args, &spec, &servers, &options, duration) {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("harness soak: error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let mut out = soak::table(&outcome.file);
    if let Some(error) = &outcome.render_error {
        say!(out, "plot rendering failed: {error}");
    }
    say!(out, "results in {}", outcome.dir.display());
    emit(&out);
    if outcome.all_pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
