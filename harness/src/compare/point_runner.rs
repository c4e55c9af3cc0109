//! One run of one server at one load point, for `harness compare`, through the harness's shared
//! runner (`runner.rs`: start the server on a free port, run `loadgen --json`, stop the server
//! with SIGINT, read its CPU time), checked for what makes a run unusable as gate evidence.
//!
//! Where it sits: `session.rs` asks for a run -> **this** -> `runner::run_point` -> processes
//! (server and loadgen on disjoint cores, `pinning.rs`) -> the run's gate figures.

use anyhow::bail;
use gev_reports::results::{PointParams, ServerExit};

use super::analysis::RunFigures;
use crate::framing::Framing;
use crate::pinning::Pinning;
use crate::runner::{self, RunOptions, ServerSpec};

/// The settings every run of a comparison shares.
pub struct PointRunner {
    options: RunOptions,
    framing: Framing,
}

impl PointRunner {
    /// Finds loadgen next to the harness binary and plans core pinning (`pin`) for
    /// `loadgen_threads` generator threads.
    pub fn new(framing: Framing, pin: bool, loadgen_threads: u32) -> anyhow::Result<PointRunner> {
        let loadgen = runner::loadgen_in(&runner::bin_dir()?)?;
        let mut options = RunOptions::new(loadgen, Pinning::plan(pin, loadgen_threads as usize));
        options.loadgen_threads = loadgen_threads;
        Ok(PointRunner { options, framing })
    }

    /// How server and loadgen were placed, for the report.
    pub fn pinning(&self) -> String {
        self.options.pinning.describe()
    }

    /// Runs `command` (`name` says which side) at `point`: its gate figures and a host line.
    /// A run that completed no request, or whose server did not exit cleanly, is an error.
    pub fn run(
        &self,
        name: &str,
        command: &str,
        point: &PointParams,
        repeat: u32,
    ) -> anyhow::Result<(RunFigures, String)> {
        let server = ServerSpec {
            name: name.to_string(),
            command: command.to_string(),
            framing: self.framing,
            reference: false,
            metrics: false,
        };
        let record = runner::run_point(&server, point, repeat, &self.options)?;
        let summary = &record.summary;
        match &record.server_exit {
            ServerExit::Clean { .. } => {}
            ServerExit::Failed { status } | ServerExit::Early { status } => {
                bail!("server `{command}` did not survive the run cleanly ({status})")
            }
            ServerExit::Killed { timeout_secs } => {
                bail!("server `{command}` did not exit within {timeout_secs} s of SIGINT (killed)")
            }
        }
        if summary.requests.completed == 0 || summary.throughput.rps <= 0.0 {
            bail!(
                "no request completed against `{command}` (errors: {:?}); does it speak {}?",
                summary.requests.errors,
                self.framing
            );
        }
        let mut figures = RunFigures::from_summary(summary);
        figures.server_cpu_us_per_request = record
            .server_cpu_secs
            .map(|cpu| cpu * 1e6 / summary.requests.completed as f64);
        let host = format!(
            "{}, {} cores, Linux {}",
            summary.env.cpu_model, summary.env.cores, summary.env.kernel
        );
        Ok((figures, host))
    }
}
