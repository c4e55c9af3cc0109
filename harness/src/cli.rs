//! The `harness` command line (clap derive): `sweep`, `report` and `compare`.
//!
//! Where it sits: **flags** -> `sweep.rs` / `output.rs` / `compare` module. Parsing only; the
//! binary (`main.rs`) dispatches.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::compare::CompareArgs;

/// The spec `harness sweep` runs when none is given.
pub const DEFAULT_SPEC: &str = "sweeps/quick.toml";
/// Where output directories are created by default.
pub const DEFAULT_OUT: &str = "reports/out";

/// Benchmark sweeps, reports and regression comparisons of gev servers.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every server of a sweep spec at every loop count and load, with the reference servers
    /// in the same run; write reports/out/<timestamp>/ and render the report.
    Sweep(SweepArgs),
    /// Re-render the plots, report.md and index.html of an output directory from its
    /// results.json alone.
    Report(ReportArgs),
    /// Regression gate: run a baseline and a candidate server in the same session (side by
    /// side, or alternating) and say, per metric, whether the candidate regressed (exit 1), or
    /// not (exit 0).
    Compare(CompareArgs),
    /// Soak: run each server for minutes under well-behaved and misbehaving clients (clean,
    /// mixed, misbehaving alone, recovery), sample memory, CPU, descriptors and connections
    /// every second, and give each server a verdict (exit 1 when one fails).
    Soak(crate::soak::SoakArgs),
}

/// Flags of `harness sweep`.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    /// The sweep spec (TOML).
    #[arg(default_value = DEFAULT_SPEC)]
    pub spec: PathBuf,
    /// Add a server: `[NAME=]COMMAND` with `{port}` and `{loops}` placeholders, split on
    /// whitespace; the name defaults to the program's file name. Repeatable.
    #[arg(long, value_name = "[NAME=]CMD")]
    pub server_cmd: Vec<String>,
    /// Create the output directory under this directory.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    pub out: PathBuf,
    /// Where the built-in servers and loadgen are (default: this binary's directory).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Write results.json, results.csv and env.txt only; no plots or pages.
    #[arg(long)]
    pub no_render: bool,
    /// How each point's servers are placed in time (overrides the spec's `schedule`):
    /// `alternating` (one server at a time, repeats interleaved: each server's absolute figures
    /// alone, the default) or `side-by-side` (every server of the point at the same moment on
    /// the same server cores, each with its own loadgen: the machine's drift hits all alike, so
    /// cost ratios to the references are tight; absolute figures are each server's share).
    #[arg(long, value_name = "SCHEDULE", value_enum)]
    pub schedule: Option<crate::spec::Schedule>,
    /// Run on other hosts: a TOML file with a `[hosts]` table (server host, client hosts),
    /// replacing the spec's own; see docs/hosts.md.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
}

/// Flags of `harness report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// An output directory of `harness sweep` (holding results.json).
    pub dir: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sweep_defaults_to_the_quick_spec() {
        let cli = Cli::parse_from(["harness", "sweep", "--server-cmd", "x=y {port}"]);
        let Command::Sweep(args) = cli.command else {
            panic!("not a sweep");
        };
        assert_eq!(args.spec, PathBuf::from(DEFAULT_SPEC));
        assert_eq!(args.server_cmd, vec!["x=y {port}".to_string()]);
        assert_eq!(args.out, PathBuf::from(DEFAULT_OUT));
        assert_eq!(args.schedule, None);
        let cli = Cli::parse_from(["harness", "sweep", "--schedule", "side-by-side"]);
        let Command::Sweep(args) = cli.command else {
            panic!("not a sweep");
        };
        assert_eq!(args.schedule, Some(crate::spec::Schedule::SideBySide));
    }
}
