//! A multi-host sweep's session: the checks made once before the first run, then every run with
//! the server on its host and one loadgen per client host, merged into one record.
//!
//! Where it sits: sweep (`sweep.rs`) -> **session** -> processes on hosts (`hosts::process` over
//! `hosts::ssh`) -> per-host summaries -> lossless merge (`hosts::merge`) -> `RunRecord`.
//!
//! [`Session::open`] does, in order, and times each phase for the report:
//! 1. **host checks** (all hosts at once): reachable over ssh (this opens each host's one
//!    ControlMaster connection), its environment (cpu, cores, kernel), and its binaries: the
//!    sha256 of `loadgen` (client hosts) and of each workspace server binary (server host) must
//!    equal the local build's, or they are copied there with scp when `copy_binaries = true`;
//! 2. **clock offsets** (`hosts::clock`), refusing the sweep where one exceeds
//!    `max_clock_offset`;
//! 3. **server start-up check** on the server host (every server started once and stopped), and
//!    during the first one the **path RTT** from each client host: the TCP connect time of 32
//!    connections loadgen opens to the server port, read from its `connect` histogram.
//!
//! [`Session::run_point`] splits the point's connections and rate by segments
//! (`hosts::segments`), starts the server, starts every client's loadgen with `--start-at` set
//! to one instant (shifted by each host's clock offset), reads the server's CPU time from
//! `/proc/PID/stat` on its host over the measured window, and merges the summaries. A host whose
//! ssh fails mid-run is a [`PointError::HostLost`] naming it; the sweep stops there and keeps
//! what it has.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gev_loadgen::Summary;
use gev_reports::hdr::decode_base64;
use gev_reports::results::{
    HostRecord, HostRun, HostsRecord, PathRtt, PointParams, PointTls, RunRecord, ServerExit,
};

use super::clock::{self, ClockOffset};
use super::merge::{self, Part};
use super::process::HostProcess;
use super::segments;
use super::ssh::{is_ssh_failure, Host, HostCommandError, Reach};
use super::table::{HostConfig, Hosts};
use crate::framing::Framing;
use crate::runner::{self, RunOptions, ServerSpec};
use crate::tls_run;

/// Connections opened (one request each) to measure the path RTT.
pub const RTT_CONNECTIONS: u32 = 32;
/// Echo requests `ping` sends from each client host to measure the path RTT.
pub const PING_COUNT: u32 = 20;
/// How the RTT is measured, as the report says it.
pub const RTT_METHOD: &str = "before the first run, from each client host over ssh: `ping -c 20` \
     to the server host's address (median and minimum; the network path alone), and the TCP \
     connect time to the server port of 32 connections loadgen opens there one every 2 ms \
     (median and minimum of its `connect` histogram; the path plus the generator's scheduling)";
/// Time limit of a short command on a host (checks, CPU reads).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// Time limit of a binary copy.
const COPY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the start-up check keeps a server running.
const PROBE_HOLD: Duration = Duration::from_millis(300);

/// Why a multi-host sweep cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Host(#[from] HostCommandError),
    #[error(
        "host {host} ({reached_by}): its clock is {offset_ms:+.3} ms off this machine's \
         (±{uncertainty_ms:.3} ms, measured over ssh), beyond max_clock_offset {bound_ms} ms: \
         synchronise its clock (chrony/NTP) or raise max_clock_offset in [hosts]"
    )]
    ClockOffset {
        host: String,
        reached_by: String,
        offset_ms: f64,
        uncertainty_ms: f64,
        bound_ms: f64,
    },
    #[error(
        "host {host} ({reached_by}): {binary} {problem}; copy the build there or set \
         copy_binaries = true in [hosts]"
    )]
    Binary {
        host: String,
        reached_by: String,
        binary: String,
        problem: String,
    },
    #[error("server {server:?} failed its start-up check on host {host}: {reason}")]
    Probe {
        server: String,
        host: String,
        reason: String,
    },
    #[error("cannot create the ssh control directory: {0}")]
    ControlDir(std::io::Error),
}

/// Why a run on the hosts produced no record.
#[derive(Debug, thiserror::Error)]
pub enum PointError {
    /// ssh to the host failed: it became unreachable or the connection was lost.
    #[error("host {host} ({reached_by}) lost: {detail}")]
    HostLost {
        host: String,
        reached_by: String,
        detail: String,
    },
    /// Anything else; the message names the host involved.
    #[error("{0}")]
    Failed(String),
}

impl PointError {
    /// Whether the sweep cannot go on (a host is gone).
    pub fn is_host_lost(&self) -> bool {
        matches!(self, PointError::HostLost { .. })
    }
}

impl From<HostCommandError> for PointError {
    fn from(error: HostCommandError) -> PointError {
        if error.ssh_failed {
            PointError::HostLost {
                host: error.host,
                reached_by: error.reached_by,
                detail: format!("{}: {}", error.what, error.detail),
            }
        } else {
            PointError::Failed(error.to_string())
        }
    }
}

/// One client host ready to run loadgen.
struct Client {
    config: HostConfig,
    host: Host,
    loadgen: String,
    offset: ClockOffset,
}

/// The checked hosts of a running sweep.
pub struct Session {
    server_config: HostConfig,
    server: Host,
    server_bin: Option<(PathBuf, PathBuf)>,
    clients: Vec<Client>,
    weights: Vec<u64>,
    start_lead: Duration,
    record: HostsRecord,
    notes: Vec<String>,
}

/// What a host check learned.
struct Facts {
    cpu: String,
    cores: u32,
    kernel: String,
    binaries: String,
}

impl Session {
    /// Checks every host, measures clock offsets, start-up checks every server on the server
    /// host and measures the path RTT; see the module doc.
    pub fn open(
        hosts: &Hosts,
        servers: &[ServerSpec],
        first_loops: u32,
        options: &RunOptions,
    ) -> Result<Session, SessionError> {
        let control_dir = Arc::new(
            tempfile::Builder::new()
                .prefix("gev-ssh-")
                .tempdir()
                .map_err(SessionError::ControlDir)?,
        );
        let make = |config: &HostConfig| match &config.reach {
            Reach::Local => Host::local(&config.name),
            reach => Host::ssh(
                &config.name,
                reach.clone(),
                Arc::clone(&control_dir),
                hosts.ssh_config.as_deref(),
                hosts.connect_timeout,
            ),
        };
        let server = make(&hosts.server);
        let client_hosts: Vec<Host> = hosts.clients.iter().map(make).collect();
        let local_bin = options
            .loadgen
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let remote_bin = |config: &HostConfig| config.bin_dir.clone().unwrap_or(local_bin.clone());

        // 1. Host checks, every host at once.
        let checks_started = Instant::now();
        let server_binaries: Vec<(PathBuf, PathBuf)> = servers
            .iter()
            .filter_map(|server| server.command.split_whitespace().next())
            .map(PathBuf::from)
            .filter(|program| program.parent() == Some(local_bin.as_path()))
            .map(|program| {
                let name = program.file_name().map(PathBuf::from).unwrap_or_default();
                (program, remote_bin(&hosts.server).join(name))
            })
            .collect();
        let client_binaries: Vec<Vec<(PathBuf, PathBuf)>> = hosts
            .clients
            .iter()
            .map(|config| vec![(options.loadgen.clone(), remote_bin(config).join("loadgen"))])
            .collect();
        let copy = hosts.copy_binaries;
        let facts: Vec<Result<Facts, SessionError>> = thread::scope(|scope| {
            let mut handles = vec![scope.spawn(|| check_host(&server, &server_binaries, copy))];
            for (host, binaries) in client_hosts.iter().zip(&client_binaries) {
                handles.push(scope.spawn(move || check_host(host, binaries, copy)));
            }
            handles
                .into_iter()
                .map(|handle| {
                    handle.join().unwrap_or_else(|_| {
                        Err(SessionError::Host(Host::local("?").error(
                            "checking",
                            "the check panicked",
                            false,
                        )))
                    })
                })
                .collect()
        });
        let facts = facts.into_iter().collect::<Result<Vec<Facts>, _>>()?;
        let check_secs = checks_started.elapsed().as_secs_f64();

        // 2. Clock offsets, every host at once.
        let clock_started = Instant::now();
        let all_hosts: Vec<&Host> = std::iter::once(&server).chain(&client_hosts).collect();
        let offsets: Vec<Result<ClockOffset, HostCommandError>> = thread::scope(|scope| {
            let handles: Vec<_> = all_hosts
                .iter()
                .map(|host| {
                    scope.spawn(move || match host.reach {
                        Reach::Local => Ok(ClockOffset::default()),
                        _ => clock::measure(host, clock::DEFAULT_ROUNDS, COMMAND_TIMEOUT),
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Host::local("?").error("measuring clocks", "panicked", false))
                    })
                })
                .collect()
        });
        let offsets = offsets.into_iter().collect::<Result<Vec<_>, _>>()?;
        let bound_ns = hosts.max_clock_offset.as_nanos() as u64;
        for (host, offset) in all_hosts.iter().zip(&offsets) {
            if offset.bound_ns() > bound_ns {
                return Err(SessionError::ClockOffset {
                    host: host.name.clone(),
                    reached_by: host.reached_by(),
                    offset_ms: offset.offset_ns as f64 / 1e6,
                    uncertainty_ms: offset.rtt_ns as f64 / 2e6,
                    bound_ms: bound_ns as f64 / 1e6,
                });
            }
        }
        let clock_secs = clock_started.elapsed().as_secs_f64();

        let record_of =
            |config: &HostConfig, host: &Host, facts: &Facts, offset: &ClockOffset| HostRecord {
                name: config.name.clone(),
                reached_by: host.reached_by(),
                address: config.address.clone(),
                cpu: facts.cpu.clone(),
                cores: facts.cores,
                kernel: facts.kernel.clone(),
                cpus: config.cpus.clone(),
                weight: config.weight,
                clock_offset_us: offset.offset_ns as f64 / 1e3,
                clock_rtt_us: offset.rtt_ns as f64 / 1e3,
                binaries: facts.binaries.clone(),
                rtt: None,
                tcp_connect: None,
            };
        let record = HostsRecord {
            server: record_of(&hosts.server, &server, &facts[0], &offsets[0]),
            clients: hosts
                .clients
                .iter()
                .zip(&client_hosts)
                .enumerate()
                .map(|(i, (config, host))| record_of(config, host, &facts[i + 1], &offsets[i + 1]))
                .collect(),
            max_clock_offset_us: bound_ns as f64 / 1e3,
            rtt_method: RTT_METHOD.to_string(),
            check_secs,
            clock_secs,
            rtt_secs: 0.0,
        };
        let clients = hosts
            .clients
            .iter()
            .zip(client_hosts)
            .zip(&offsets[1..])
            .map(|((config, host), offset)| Client {
                loadgen: match host.reach {
                    Reach::Local => options.loadgen.display().to_string(),
                    _ => remote_bin(config).join("loadgen").display().to_string(),
                },
                config: config.clone(),
                host,
                offset: *offset,
            })
            .collect();
        let mut session = Session {
            server_bin: match server.reach {
                Reach::Local => None,
                _ => Some((local_bin.clone(), remote_bin(&hosts.server))),
            },
            server_config: hosts.server.clone(),
            server,
            clients,
            weights: hosts.weights(),
            start_lead: hosts.start_lead,
            record,
            notes: Vec::new(),
        };
        if hosts.server.cpus.is_none() {
            session.notes.push(format!(
                "server host {}: the server is not pinned (give `cpus` in [hosts.server])",
                hosts.server.name
            ));
        }
        if servers.iter().any(|s| s.metrics) {
            session.notes.push(
                "metrics are not scraped in a multi-host sweep (the endpoint is on the server \
                 host's loopback)"
                    .into(),
            );
        }

        // 3. Start-up check of every server; the RTT during the first.
        for (index, spec) in servers.iter().enumerate() {
            let (mut process, port) = session
                .start_server(spec, first_loops, PointTls::Off, options)
                .map_err(|error| SessionError::Probe {
                    server: spec.name.clone(),
                    host: session.server.name.clone(),
                    reason: error.to_string(),
                })?;
            thread::sleep(PROBE_HOLD);
            if index == 0 {
                let rtt_started = Instant::now();
                let target = target_text(spec.framing, &session.server_config.address, port);
                for client in 0..session.clients.len() {
                    match session.ping(client) {
                        Ok(rtt) => session.record.clients[client].rtt = Some(rtt),
                        Err(error) => session.notes.push(format!(
                            "no ping RTT from client host {}: {error}",
                            session.clients[client].host.name
                        )),
                    }
                    let connect = session.measure_rtt(client, &target, spec.framing)?;
                    session.record.clients[client].tcp_connect = Some(connect);
                }
                session.record.rtt_secs = rtt_started.elapsed().as_secs_f64();
            }
            let exit = stop_server(&mut process, options.stop_timeout);
            if !exit.is_clean() {
                session.notes.push(format!(
                    "server {:?} did not stop cleanly in its start-up check on host {}: {exit:?}",
                    spec.name, session.server.name
                ));
            }
        }
        session.notes.insert(
            0,
            format!(
                "hosts: checks took {:.2} s, clock offsets {:.2} s, path RTT {:.2} s (added once \
                 to this sweep)",
                session.record.check_secs, session.record.clock_secs, session.record.rtt_secs
            ),
        );
        Ok(session)
    }

    /// The hosts as results.json records them.
    pub fn record(&self) -> &HostsRecord {
        &self.record
    }

    /// Caveats for the sweep's notes.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Starts `spec` on the server host with TLS as `tls` asks (a self-signed certificate: the
    /// clients run with `--insecure`, so no certificate file has to reach them); returns the
    /// process and the port it listens on.
    fn start_server(
        &self,
        spec: &ServerSpec,
        loops: u32,
        tls: PointTls,
        options: &RunOptions,
    ) -> Result<(HostProcess, u16), PointError> {
        let argv = server_argv(
            &tls_run::command_at(spec, tls, None),
            loops,
            &self.server_config.address,
            self.server_bin.as_ref(),
        );
        let mut process = HostProcess::spawn(
            &self.server,
            &argv,
            self.server_config.cpus.as_deref(),
            true,
            true,
        )?;
        let deadline = Instant::now() + options.startup_timeout;
        while let Some(line) = process.next_line(deadline.saturating_duration_since(Instant::now()))
        {
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                if let Ok(addr) = addr.trim().parse::<SocketAddr>() {
                    return Ok((process, addr.port()));
                }
            }
        }
        // Let a dying process finish writing why.
        thread::sleep(Duration::from_millis(100));
        let status = process.try_status();
        let detail = format!(
            "`{}` did not print `listening on <addr>` within {:?}{}: {}",
            argv.join(" "),
            options.startup_timeout,
            status.map_or(String::new(), |s| format!(" (exited: {s})")),
            process.stderr_line()
        );
        match status {
            Some(status) if is_ssh_failure(&self.server.reach, &status) => {
                Err(PointError::HostLost {
                    host: self.server.name.clone(),
                    reached_by: self.server.reached_by(),
                    detail,
                })
            }
            _ => Err(PointError::Failed(format!(
                "host {}: server {}",
                self.server.name, detail
            ))),
        }
    }

    /// `ping` from client `index` to the server host's address: median and minimum RTT.
    fn ping(&self, index: usize) -> Result<PathRtt, HostCommandError> {
        let client = &self.clients[index];
        let address = super::ssh::quote(&self.server_config.address);
        // Intervals under 0.2 s need privileges on most systems; fall back to the slow pace.
        let script = format!(
            "ping -n -c {PING_COUNT} -i 0.02 {address} 2>/dev/null || ping -n -c {PING_COUNT} -i 0.2 {address}"
        );
        let text = client
            .host
            .run(&script, "pinging the server host", COMMAND_TIMEOUT)?;
        parse_ping(&text).ok_or_else(|| {
            client.host.error(
                "pinging the server host",
                "ping printed no `time=` lines",
                false,
            )
        })
    }

    /// The TCP connect RTT from client `index` to `target`.
    fn measure_rtt(
        &self,
        index: usize,
        target: &str,
        framing: Framing,
    ) -> Result<PathRtt, SessionError> {
        let client = &self.clients[index];
        let mut argv = vec![
            client.loadgen.clone(),
            target.to_string(),
            "--framing".into(),
            framing.as_str().into(),
            "-c".into(),
            RTT_CONNECTIONS.to_string(),
            "-n".into(),
            RTT_CONNECTIONS.to_string(),
            "--timeout".into(),
            "5s".into(),
            // One connect at a time (every 2 ms), so the samples do not queue behind each other.
            "--connect-rate".into(),
            "500".into(),
            "--json".into(),
        ];
        if framing != Framing::Http {
            argv.extend(["--size".to_string(), "16".to_string()]);
        }
        let what = "measuring the RTT to the server";
        let summary = run_to_summary(
            &client.host,
            &argv,
            client.config.cpus.as_deref(),
            COMMAND_TIMEOUT,
        )
        .map_err(|e| client.host.error(what, e, false))?;
        let histogram = summary
            .histograms
            .get("connect")
            .ok_or_else(|| {
                client
                    .host
                    .error(what, "loadgen's summary has no connect histogram", false)
            })
            .and_then(|text| decode_base64(text).map_err(|e| client.host.error(what, e, false)))?;
        if histogram.is_empty() {
            return Err(client
                .host
                .error(what, "no connection was made", false)
                .into());
        }
        Ok(PathRtt {
            median_us: histogram.value_at_quantile(0.5) as f64 / 1e3,
            min_us: histogram.min() as f64 / 1e3,
            samples: histogram.len(),
        })
    }

    /// Runs `server` at `point` with the load split over the client hosts; see the module doc.
    pub fn run_point(
        &self,
        server: &ServerSpec,
        point: &PointParams,
        repeat: u32,
        options: &RunOptions,
    ) -> Result<RunRecord, PointError> {
        let shares =
            segments::split_load(point.connections, point.rate, &self.weights).map_err(|e| {
                PointError::Failed(format!("cannot split {point} over the client hosts: {e}"))
            })?;
        let (mut process, port) = self.start_server(server, point.loops, point.tls, options)?;
        let target = target_text(server.framing, &self.server_config.address, port);

        let lead = self.start_lead
            + self
                .clients
                .iter()
                .map(|c| Duration::from_nanos(c.offset.rtt_ns))
                .max()
                .unwrap_or_default();
        let start_ns = clock::now_ns() + lead.as_nanos() as i128;
        let started = Instant::now();
        let mut generators: Vec<(usize, HostProcess)> = Vec::new();
        for (index, share) in shares.iter().enumerate() {
            if share.connections == 0 {
                continue;
            }
            let client = &self.clients[index];
            let mut own = point.clone();
            own.connections = share.connections;
            own.rate = share.rate;
            let mut argv = vec![client.loadgen.clone(), target.clone()];
            argv.extend(runner::loadgen_args(
                server.framing,
                &own,
                options.loadgen_threads,
            ));
            argv.extend(tls_run::loadgen_args(&own, None));
            argv.push("--start-at".into());
            argv.push((start_ns + i128::from(client.offset.offset_ns)).to_string());
            let generator = HostProcess::spawn(
                &client.host,
                &argv,
                client.config.cpus.as_deref(),
                false,
                false,
            )?;
            generators.push((index, generator));
        }

        let warmup = Duration::from_secs_f64(point.warmup_secs.max(0.0));
        let window_start = lead + warmup;
        let limit = window_start
            + Duration::from_secs_f64(point.duration_secs.max(0.0))
            + options.loadgen_grace;
        let mut cpu_start: Option<Option<f64>> = None;
        let mut cpu_start_at: Option<std::time::Instant> = None;
        loop {
            let mut running = 0;
            for (index, generator) in generators.iter_mut() {
                match generator.try_status() {
                    None => running += 1,
                    Some(status) if is_ssh_failure(&generator.host().reach, &status) => {
                        let client = &self.clients[*index];
                        return Err(PointError::HostLost {
                            host: client.host.name.clone(),
                            reached_by: client.host.reached_by(),
                            detail: format!(
                                "ssh failed running loadgen there (exit 255): {}",
                                generator.stderr_line()
                            ),
                        });
                    }
                    Some(_) => {}
                }
            }
            if running == 0 {
                break;
            }
            let elapsed = started.elapsed();
            if cpu_start.is_none() && elapsed >= window_start {
                cpu_start = Some(self.server_cpu_secs(process.remote_pid));
                cpu_start_at = Some(std::time::Instant::now());
            }
            if let Some(status) = process.try_status() {
                if is_ssh_failure(&self.server.reach, &status) {
                    return Err(PointError::HostLost {
                        host: self.server.name.clone(),
                        reached_by: self.server.reached_by(),
                        detail: format!(
                            "ssh failed while the server ran there (exit 255): {}",
                            process.stderr_line()
                        ),
                    });
                }
            }
            if elapsed >= limit {
                let waiting = generators
                    .iter_mut()
                    .find_map(|(i, g)| g.try_status().is_none().then_some(*i))
                    .unwrap_or(0);
                return Err(PointError::Failed(format!(
                    "host {}: loadgen against {target} did not finish within {limit:?} (killed)",
                    self.clients[waiting].host.name
                )));
            }
            let nap = if cpu_start.is_none() {
                window_start
                    .saturating_sub(elapsed)
                    .min(Duration::from_millis(10))
            } else {
                Duration::from_millis(10)
            };
            thread::sleep(nap.max(Duration::from_millis(1)));
        }
        let cpu_end = self.server_cpu_secs(process.remote_pid);
        // The wall-clock time between the two reads (each an ssh round trip after its instant).
        let cpu_window_secs = cpu_start_at.map(|at| at.elapsed().as_secs_f64());
        let server_exit = stop_server(&mut process, options.stop_timeout);

        let mut summaries: Vec<(usize, Summary)> = Vec::new();
        for (index, mut generator) in generators {
            let client = &self.clients[index];
            let (status, stdout) = generator.wait_output();
            let status = status.ok_or_else(|| {
                PointError::Failed(format!(
                    "host {}: loadgen's status is unknown",
                    client.host.name
                ))
            })?;
            if !status.success() {
                return Err(PointError::Failed(format!(
                    "host {}: loadgen against {target} failed ({status}): {}",
                    client.host.name,
                    generator.stderr_line()
                )));
            }
            let summary =
                Summary::from_json(String::from_utf8_lossy(&stdout).trim()).map_err(|e| {
                    PointError::Failed(format!(
                        "host {}: loadgen printed no readable summary: {e}",
                        client.host.name
                    ))
                })?;
            summaries.push((index, summary));
        }
        let parts: Vec<Part<'_>> = summaries
            .iter()
            .map(|(index, summary)| Part {
                host: &self.clients[*index].host.name,
                summary,
                clock_offset_ns: self.clients[*index].offset.offset_ns,
            })
            .collect();
        let merged = merge::merge(&parts).map_err(|e| PointError::Failed(e.to_string()))?;
        let server_cpu_secs = match (cpu_start.flatten(), cpu_end) {
            (Some(start), Some(end)) if end >= start => Some(end - start),
            _ => None,
        };
        let hosts = summaries
            .into_iter()
            .map(|(index, summary)| HostRun {
                host: self.clients[index].host.name.clone(),
                connections: shares[index].connections,
                rate: shares[index].rate,
                clock_offset_us: self.clients[index].offset.offset_ns as f64 / 1e3,
                summary,
            })
            .collect();
        Ok(RunRecord {
            server: server.name.clone(),
            point: point.clone(),
            repeat,
            addr: target,
            summary: merged,
            server_cpu_secs,
            server_cpu_window_secs: server_cpu_secs.and(cpu_window_secs),
            // Pinned on its host by `cpus` in [hosts], not by this machine's placement plan.
            placement: None,
            metrics_before: None,
            metrics_after: None,
            server_exit,
            hosts,
        })
    }

    /// User plus system CPU time of the server process so far, read on its host from
    /// `/proc/PID/stat` (in clock ticks, converted with the host's `getconf CLK_TCK`).
    fn server_cpu_secs(&self, pid: Option<u32>) -> Option<f64> {
        let pid = pid?;
        let text = self
            .server
            .run(
                &format!("cat /proc/{pid}/stat && getconf CLK_TCK"),
                "reading the server's CPU time",
                COMMAND_TIMEOUT,
            )
            .ok()?;
        parse_proc_stat_cpu(&text)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.server.close();
        for client in &self.clients {
            client.host.close();
        }
    }
}

/// Stops a server process and says how it ended.
fn stop_server(process: &mut HostProcess, timeout: Duration) -> ServerExit {
    if let Some(status) = process.try_status() {
        return ServerExit::Early {
            status: status.to_string(),
        };
    }
    let asked = Instant::now();
    match process.stop(timeout) {
        Some(status) if status.success() => ServerExit::Clean {
            after_secs: asked.elapsed().as_secs_f64(),
        },
        Some(status) => ServerExit::Failed {
            status: status.to_string(),
        },
        None => {
            process.kill();
            ServerExit::Killed {
                timeout_secs: timeout.as_secs_f64(),
            }
        }
    }
}

/// Runs loadgen on a host to completion within `limit` and parses its summary.
fn run_to_summary(
    host: &Host,
    argv: &[String],
    cpus: Option<&str>,
    limit: Duration,
) -> Result<Summary, String> {
    let mut process =
        HostProcess::spawn(host, argv, cpus, false, false).map_err(|e| e.to_string())?;
    let started = Instant::now();
    while process.try_status().is_none() {
        if started.elapsed() >= limit {
            process.kill();
            return Err(format!("loadgen did not finish within {limit:?}"));
        }
        thread::sleep(Duration::from_millis(5));
    }
    let (status, stdout) = process.wait_output();
    match status {
        Some(status) if status.success() => {
            Summary::from_json(String::from_utf8_lossy(&stdout).trim())
                .map_err(|e| format!("loadgen printed no readable summary: {e}"))
        }
        Some(status) => Err(format!(
            "loadgen failed ({status}): {}",
            process.stderr_line()
        )),
        None => Err("loadgen's status is unknown".into()),
    }
}

/// The server's argv on its host: placeholders filled (`{port}` = 0, `{loops}`, `{host}`), the
/// value of `--host` set to the address clients reach, and a program from the local build's
/// directory moved to the host's binary directory.
pub fn server_argv(
    command: &str,
    loops: u32,
    address: &str,
    bin_dirs: Option<&(PathBuf, PathBuf)>,
) -> Vec<String> {
    let mut argv: Vec<String> = command
        .replace("{port}", "0")
        .replace("{loops}", &loops.to_string())
        .replace("{host}", address)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    for index in 0..argv.len() {
        if argv[index] == "--host" && index + 1 < argv.len() {
            argv[index + 1] = address.to_string();
        } else if argv[index].starts_with("--host=") {
            argv[index] = format!("--host={address}");
        }
    }
    if let (Some(program), Some((local, remote))) = (argv.first_mut(), bin_dirs) {
        let path = Path::new(program.as_str());
        if path.parent() == Some(local.as_path()) {
            if let Some(name) = path.file_name() {
                *program = remote.join(name).display().to_string();
            }
        }
    }
    argv
}

/// loadgen's target for `framing` at `address:port` (an IPv6 address is bracketed).
pub fn target_text(framing: Framing, address: &str, port: u16) -> String {
    match address.parse::<IpAddr>() {
        Ok(ip) => framing.target(SocketAddr::new(ip, port)),
        Err(_) => match framing {
            Framing::Raw | Framing::Length => format!("{address}:{port}"),
            Framing::WebSocket => format!("ws://{address}:{port}/"),
            Framing::Http => format!("http://{address}:{port}/"),
        },
    }
}

/// Median and minimum of ping's per-reply `time=X ms` values, in microseconds.
pub fn parse_ping(text: &str) -> Option<PathRtt> {
    let mut times: Vec<f64> = text
        .lines()
        .filter_map(|line| line.split("time=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ms| ms * 1e3)
        .collect();
    if times.is_empty() {
        return None;
    }
    times.sort_by(f64::total_cmp);
    let middle = times.len() / 2;
    let median = if times.len() % 2 == 0 {
        (times[middle - 1] + times[middle]) / 2.0
    } else {
        times[middle]
    };
    Some(PathRtt {
        median_us: median,
        min_us: times[0],
        samples: times.len() as u64,
    })
}

/// utime + stime in seconds from `/proc/PID/stat` text followed by a `CLK_TCK` line.
pub fn parse_proc_stat_cpu(text: &str) -> Option<f64> {
    let mut lines = text.lines();
    let stat = lines.next()?;
    let ticks: f64 = lines.next()?.trim().parse().ok()?;
    // The command name may hold spaces and parentheses; fields resume after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    (ticks > 0.0).then(|| (utime + stime) / ticks)
}

/// Checks one host: reachable, environment, binaries (copied when allowed).
fn check_host(
    host: &Host,
    binaries: &[(PathBuf, PathBuf)],
    copy: bool,
) -> Result<Facts, SessionError> {
    let text = host.run(
        "nproc && uname -r && (grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- || true)",
        "connecting and reading its environment",
        COMMAND_TIMEOUT,
    )?;
    let mut lines = text.lines();
    let cores = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    let kernel = lines
        .next()
        .map_or("unknown".into(), |l| l.trim().to_string());
    let cpu = lines
        .next()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .unwrap_or("unknown")
        .to_string();
    let binaries = match host.reach {
        Reach::Local => "this machine's build".to_string(),
        _ => check_binaries(host, binaries, copy)?,
    };
    Ok(Facts {
        cpu,
        cores,
        kernel,
        binaries,
    })
}

/// sha256 of each path on `host` (`None` where missing).
fn hashes(host: &Host, paths: &[&Path]) -> Result<Vec<Option<String>>, HostCommandError> {
    let words: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let script = format!(
        "for f in {}; do if [ -f \"$f\" ]; then sha256sum \"$f\" | cut -d' ' -f1; else echo missing; fi; done",
        super::ssh::shell_words(&words)
    );
    let text = host.run(&script, "hashing binaries", COMMAND_TIMEOUT)?;
    Ok(text
        .lines()
        .map(|line| (line.trim() != "missing").then(|| line.trim().to_string()))
        .collect())
}

/// Makes the host's copies of `binaries` (local, remote) equal to the local build's.
fn check_binaries(
    host: &Host,
    binaries: &[(PathBuf, PathBuf)],
    copy: bool,
) -> Result<String, SessionError> {
    if binaries.is_empty() {
        return Ok("none to check".into());
    }
    let local: Vec<&Path> = binaries.iter().map(|(l, _)| l.as_path()).collect();
    let remote: Vec<&Path> = binaries.iter().map(|(_, r)| r.as_path()).collect();
    let want = hashes(&Host::local("this machine"), &local)?;
    let have = hashes(host, &remote)?;
    let mut copied = Vec::new();
    for ((local_path, remote_path), (want, have)) in binaries.iter().zip(want.iter().zip(&have)) {
        let Some(want) = want else {
            return Err(SessionError::Binary {
                host: "this machine".into(),
                reached_by: "local".into(),
                binary: local_path.display().to_string(),
                problem: "is missing from the local build".into(),
            });
        };
        if have.as_ref() == Some(want) {
            continue;
        }
        if !copy {
            let problem = match have {
                None => "is missing".to_string(),
                Some(have) => format!(
                    "differs from the local build (sha256 {} there, {} here)",
                    &have[..12.min(have.len())],
                    &want[..12.min(want.len())]
                ),
            };
            return Err(SessionError::Binary {
                host: host.name.clone(),
                reached_by: host.reached_by(),
                binary: remote_path.display().to_string(),
                problem,
            });
        }
        if let Some(dir) = remote_path.parent() {
            host.run(
                &format!("mkdir -p {}", super::ssh::quote(&dir.display().to_string())),
                "creating the binary directory",
                COMMAND_TIMEOUT,
            )?;
        }
        host.copy_to(local_path, remote_path, COPY_TIMEOUT)?;
        copied.push(remote_path.as_path());
    }
    if copied.is_empty() {
        return Ok("sha256 matched the local build".into());
    }
    let after = hashes(host, &copied)?;
    for (path, hash) in copied.iter().zip(after) {
        let want = binaries
            .iter()
            .position(|(_, r)| r == path)
            .and_then(|i| want[i].clone());
        if hash != want {
            return Err(SessionError::Binary {
                host: host.name.clone(),
                reached_by: host.reached_by(),
                binary: path.display().to_string(),
                problem: "still differs after copying it there".into(),
            });
        }
    }
    Ok(format!(
        "copied with scp ({} file(s)), sha256 matched",
        copied.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_binds_where_clients_reach_it() {
        let dirs = (PathBuf::from("/local/bin"), PathBuf::from("/opt/gev"));
        let argv = server_argv(
            "/local/bin/gev-echo --host 127.0.0.1 --port {port} --loops {loops}",
            2,
            "198.18.0.1",
            Some(&dirs),
        );
        assert_eq!(
            argv.join(" "),
            "/opt/gev/gev-echo --host 198.18.0.1 --port 0 --loops 2"
        );
        let other = server_argv(
            "/usr/bin/srv --host={host} -p {port}",
            1,
            "10.0.0.1",
            Some(&dirs),
        );
        assert_eq!(other.join(" "), "/usr/bin/srv --host=10.0.0.1 -p 0");
    }

    #[test]
    fn targets_name_the_server_address() {
        assert_eq!(target_text(Framing::Raw, "198.18.0.1", 5), "198.18.0.1:5");
        assert_eq!(target_text(Framing::WebSocket, "::1", 5), "ws://[::1]:5/");
        assert_eq!(
            target_text(Framing::Http, "srv.lan", 80),
            "http://srv.lan:80/"
        );
    }

    #[test]
    fn proc_stat_cpu_survives_odd_command_names() {
        let stat = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1 1 1\n100\n";
        assert_eq!(parse_proc_stat_cpu(stat), Some(3.0));
        assert_eq!(parse_proc_stat_cpu("garbage"), None);
        // This process's own line parses.
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(parse_proc_stat_cpu(&format!("{own}100\n")).is_some());
    }

    #[test]
    fn ping_replies_give_median_and_minimum() {
        let text = "PING 198.18.0.1 (198.18.0.1) 56(84) bytes of data.\n\
            64 bytes from 198.18.0.1: icmp_seq=1 ttl=64 time=0.300 ms\n\
            64 bytes from 198.18.0.1: icmp_seq=2 ttl=64 time=0.050 ms\n\
            64 bytes from 198.18.0.1: icmp_seq=3 ttl=64 time=0.100 ms\n\n\
            rtt min/avg/max/mdev = 0.050/0.150/0.300/0.100 ms\n";
        let rtt = parse_ping(text).unwrap();
        assert_eq!(rtt.samples, 3);
        assert!((rtt.median_us - 100.0).abs() < 1e-9 && (rtt.min_us - 50.0).abs() < 1e-9);
        assert_eq!(parse_ping("100% packet loss"), None);
    }

    #[test]
    fn ssh_failures_are_host_losses() {
        let host = Host::local("c2");
        let lost: PointError = host
            .error("running loadgen", "Connection closed", true)
            .into();
        assert!(lost.is_host_lost());
        assert!(
            lost.to_string().starts_with("host c2 (local) lost: "),
            "{lost}"
        );
        let failed: PointError = host.error("x", "y", false).into();
        assert!(!failed.is_host_lost());
    }
}
