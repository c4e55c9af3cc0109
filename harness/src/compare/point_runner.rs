//! One run of one server (or of both servers side by side) at one load point, for
//! `harness compare`, through the harness's shared runner (`runner.rs`: start the server on a
//! free port, run `loadgen --json`, stop the server with SIGINT, read its CPU time), checked for
//! what makes a run unusable as gate evidence.
//!
//! Where it sits: `session.rs` asks for a run, or for both sides side by side -> **this** ->
//! `runner::run_side_by_side` -> processes (servers and loadgens on disjoint cores,
//! `pinning.rs`) -> each run's gate figures.

use anyhow::bail;
use gev_reports::results::{PointParams, RunRecord, ServerExit};

use super::analysis::RunFigures;
use crate::framing::Framing;
use crate::pinning::Pinning;
use crate::runner::{self, RunOptions, ServerSpec};
use crate::tls_cert::CertFiles;

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

    /// Run over TLS with this certificate (`harness compare --tls`): it fills the commands'
    /// `{tls}` placeholder and is loadgen's `--ca` at TLS points (`tls_run.rs`).
    pub fn set_tls_cert(&mut self, files: CertFiles) {
        self.options.tls_cert = Some(files);
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
        let (mut figures, host) = self.run_side_by_side(&[(name, command)], point, repeat)?;
        Ok((figures.remove(0), host))
    }

    /// Runs every `(name, command)` at `point` at the same time, sharing the server cores (see
    /// `runner::run_side_by_side`): one set of gate figures per server, in order, and a host
    /// line. Any run that completed no request, or whose server did not exit cleanly, fails all.
    pub fn run_side_by_side(
        &self,
        servers: &[(&str, &str)],
        point: &PointParams,
        repeat: u32,
    ) -> anyhow::Result<(Vec<RunFigures>, String)> {
        let specs: Vec<ServerSpec> = servers
            .iter()
            .map(|(name, command)| ServerSpec {
                name: name.to_string(),
                command: command.to_string(),
                framing: self.framing,
                reference: false,
                metrics: false,
            })
            .collect();
        let records = runner::run_side_by_side(&specs, point, repeat, &self.options)?;
        let mut host = String::new();
        let mut all = Vec::with_capacity(records.len());
        for (record, (_, command)) in records.iter().zip(servers) {
            all.push(self.figures(record, command)?);
            let env = &record.summary.env;
            host = format!(
                "{}, {} cores, Linux {}",
                env.cpu_model, env.cores, env.kernel
            );
        }
        Ok((all, host))
    }

    /// The gate figures of one run, or why the run is unusable as evidence.
    fn figures(&self, record: &RunRecord, command: &str) -> anyhow::Result<RunFigures> {
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
        Ok(figures)
    }
}
