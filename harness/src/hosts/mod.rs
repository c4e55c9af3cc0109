//! Multi-host sweeps: the server on one host, the load generators on others, reached with the
//! system's OpenSSH client, and their histograms merged without loss.
//!
//! Where it sits: sweep spec `[hosts]` ([`table`]) -> host checks, clock offsets and path RTT
//! ([`session`] over [`ssh`], [`clock`]) -> per run: the load split exactly by [`segments`], the
//! server and one loadgen per client host as [`process`]es on their hosts, started at one
//! wall-clock instant -> the client summaries merged by HDR addition ([`merge`]) -> one
//! `RunRecord` with each host's own summary beside the merge. Without `[hosts]` the sweep runs
//! on this machine exactly as before ([`run_slot`] hands it to `runner::run_point`).

pub mod clock;
pub mod merge;
pub mod process;
pub mod segments;
pub mod session;
pub mod ssh;
pub mod table;

pub use session::{PointError, Session, SessionError};
pub use table::{Hosts, HostsError, HostsFile};

use gev_reports::results::{HostsRecord, PointParams, RunRecord};

use crate::runner::{self, RunOptions, ServerSpec};

/// A run that failed; `stops_sweep` when a host was lost, so later runs cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SlotError {
    pub message: String,
    pub stops_sweep: bool,
}

/// Runs one slot of a sweep: on the hosts of `session` when there is one, else on this machine.
pub fn run_slot(
    session: Option<&Session>,
    server: &ServerSpec,
    point: &PointParams,
    repeat: u32,
    options: &RunOptions,
) -> Result<RunRecord, SlotError> {
    match session {
        None => runner::run_point(server, point, repeat, options).map_err(|error| SlotError {
            message: error.to_string(),
            stops_sweep: false,
        }),
        Some(session) => session
            .run_point(server, point, repeat, options)
            .map_err(|error| SlotError {
                stops_sweep: error.is_host_lost(),
                message: error.to_string(),
            }),
    }
}

/// env.txt lines for the hosts: one per host and the checks' figures.
pub fn env_lines(record: &HostsRecord) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    let describe = |host: &gev_reports::results::HostRecord| {
        let mut text = format!(
            "{} at {}: {}, {} cores, kernel {}, clock offset {:+.1} µs (rtt {:.1} µs), binaries: {}",
            host.reached_by,
            host.address,
            host.cpu,
            host.cores,
            host.kernel,
            host.clock_offset_us,
            host.clock_rtt_us,
            host.binaries
        );
        if let Some(cpus) = &host.cpus {
            text.push_str(&format!(", pinned to cpus {cpus}"));
        }
        if let Some(rtt) = &host.rtt {
            text.push_str(&format!(
                ", path RTT to the server (ping) median {:.1} µs, min {:.1} µs ({} samples)",
                rtt.median_us, rtt.min_us, rtt.samples
            ));
        }
        if let Some(rtt) = &host.tcp_connect {
            text.push_str(&format!(
                ", TCP connect to the server median {:.1} µs, min {:.1} µs ({} samples)",
                rtt.median_us, rtt.min_us, rtt.samples
            ));
        }
        text
    };
    lines.push((
        format!("server host {}", record.server.name),
        describe(&record.server),
    ));
    for client in &record.clients {
        lines.push((
            format!("client host {} (weight {})", client.name, client.weight),
            describe(client),
        ));
    }
    lines.push((
        "max clock offset".into(),
        format!("{:.1} µs", record.max_clock_offset_us),
    ));
    lines.push(("rtt method".into(), record.rtt_method.clone()));
    lines.push((
        "host checks".into(),
        format!(
            "checks {:.3} s, clock offsets {:.3} s, path RTT {:.3} s",
            record.check_secs, record.clock_secs, record.rtt_secs
        ),
    ));
    lines
}
