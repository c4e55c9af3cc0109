//! One server's soak: start it, take its idle descriptor count, then run the phases on one
//! clock — clean (the well-behaved loadgen alone), mixed (the misbehaving loadgen joins), alone
//! (the well-behaved loadgen has ended), recovery (no client) — sampling the process every
//! second; then stop it and judge.
//!
//! Where it sits: `harness soak` (`mod.rs`) -> **session** (processes: the server through
//! `runner::ServerProcess`, two loadgens) -> sampler every second -> [`ServerSoak`] with its
//! verdict. Two loadgen processes rather than one `--misbehave` run, so the well-behaved load is
//! the same (connections and rate) in the clean and the mixed window and the ratio between them
//! compares like with like, and so misbehaving clients can outlive the well-behaved ones. Every
//! child is killed on drop, including when the soak fails half-way.
//!
//! The misbehaving loadgen runs at a lower CPU priority ([`MISBEHAVING_NICE`]) on the same
//! loadgen cores: it stands for attackers on other machines, and its own CPU work (flooding,
//! ~600 connects a second, the loopback TCP processing its writes trigger) must not be taken
//! for the server's latency. Measured (issue 16, second session): with the misbehaving clients
//! pointed at a *second* server, so the server under test saw only the well-behaved load, the
//! well-behaved p99 still rose 1.94x over the clean window at equal priority.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use gev_loadgen::Summary;
use gev_reports::results::ServerExit;

use super::record::{LoadPoint, PhaseTimes, ServerSoak};
use super::sampler::{ProcSampler, Sample};
use super::spec::SoakSpec;
use super::verdict;
use crate::runner::{RunError, RunOptions, ServerProcess, ServerSpec};

/// Niceness of the misbehaving loadgen (the well-behaved one keeps the harness's, 0 normally):
/// when both want the loadgen core, the scheduler gives the well-behaved one about nine tenths.
pub const MISBEHAVING_NICE: libc::c_int = 10;

/// Time a loadgen may take beyond its window (connecting, draining, printing).
const LOADGEN_GRACE: Duration = Duration::from_secs(30);
/// How long the idle server is left alone before its descriptors are counted.
const SETTLE: Duration = Duration::from_millis(500);

/// A loadgen process, killed on drop unless it has exited; its output is read on threads so a
/// full pipe never blocks it.
struct Loadgen {
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    /// When it was started, seconds on the soak clock.
    started_at: f64,
}

impl Drop for Loadgen {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read_all(pipe: Option<impl Read + Send + 'static>) -> Option<JoinHandle<Vec<u8>>> {
    pipe.map(|mut pipe| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    })
}

impl Loadgen {
    /// Start a loadgen with `args`; `nice` above 0 lowers its CPU priority.
    fn start(
        options: &RunOptions,
        args: &[String],
        started_at: f64,
        nice: libc::c_int,
    ) -> Result<Loadgen, RunError> {
        let mut command = Command::new(&options.loadgen);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        options.pinning.apply_loadgen(&mut command);
        if nice > 0 {
            lower_priority_on_spawn(&mut command, nice);
        }
        let mut child = command.spawn().map_err(|source| RunError::LoadgenSpawn {
            path: options.loadgen.clone(),
            source,
        })?;
        let stdout = read_all(child.stdout.take());
        let stderr = read_all(child.stderr.take());
        Ok(Loadgen {
            child,
            stdout,
            stderr,
            started_at,
        })
    }

    /// Wait until `deadline` for it to exit (killing it then) and parse its summary.
    fn finish(mut self, deadline: Instant) -> Result<Summary, String> {
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("loadgen did not finish in time (killed)".into());
                }
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("waiting for loadgen: {e}")),
            }
        }
        let stdout = self
            .stdout
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&stdout);
        Summary::from_json(text.trim()).map_err(|e| {
            let stderr = String::from_utf8_lossy(&stderr);
            let last = stderr.lines().last().unwrap_or("").trim().to_string();
            format!("loadgen printed no summary ({e}); its last stderr line: {last}")
        })
    }
}

/// Lowers the priority of the process `command` will start by `nice`.
fn lower_priority_on_spawn(command: &mut Command, nice: libc::c_int) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec; it only calls setpriority(2), a
    // plain system call that is async-signal-safe, with integers copied into the closure (no
    // allocation, no locks).
    unsafe {
        command.pre_exec(move || {
            if libc::setpriority(libc::PRIO_PROCESS, 0, nice) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn millis(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// Soak `server` for `duration` as `spec` says; `progress` prints a line to stderr every ten
/// seconds.
pub fn soak_server(
    spec: &SoakSpec,
    server: &ServerSpec,
    options: &RunOptions,
    duration: Duration,
    progress: bool,
) -> Result<ServerSoak, RunError> {
    let mut process = ServerProcess::start(server, spec.loops, options)?;
    let addr = process.addr();
    let target = server.framing.target(addr);
    let mut sampler = ProcSampler::new(process.pid(), addr.port());
    thread::sleep(SETTLE);
    let baseline_fds = (0..3)
        .filter_map(|_| {
            thread::sleep(Duration::from_millis(50));
            sampler.fds()
        })
        .min()
        .unwrap_or(0);

    let [clean, mixed, alone, _recovery] = spec.phase_lengths(duration);
    let phases = PhaseTimes {
        clean_end: clean.as_secs_f64(),
        mixed_end: (clean + mixed).as_secs_f64(),
        alone_end: (clean + mixed + alone).as_secs_f64(),
        end: duration.as_secs_f64(),
    };
    let well_args: Vec<String> = vec![
        target.clone(),
        "-c".into(),
        spec.well_behaved_connections().to_string(),
        "-t".into(),
        spec.loadgen_threads.to_string(),
        "-R".into(),
        spec.rate.to_string(),
        "--size".into(),
        spec.size.to_string(),
        "-d".into(),
        millis(clean + mixed),
        "--json".into(),
    ];
    let bad_args: Vec<String> = vec![
        target,
        "-c".into(),
        spec.misbehaving_connections().to_string(),
        "--size".into(),
        spec.size.to_string(),
        "--misbehave".into(),
        spec.loadgen_mix(),
        "-d".into(),
        millis(mixed + alone),
        "--json".into(),
    ];

    let start = Instant::now();
    let well = Loadgen::start(options, &well_args, 0.0, 0)?;
    let mut bad: Option<Loadgen> = None;
    let mut samples: Vec<Sample> = Vec::new();
    let mut alive = true;
    let mut second = 0u64;
    loop {
        let t = start.elapsed().as_secs_f64();
        if t >= phases.end {
            break;
        }
        if bad.is_none() && t >= phases.clean_end {
            bad = Some(Loadgen::start(options, &bad_args, t, MISBEHAVING_NICE)?);
        }
        if process.exited().is_some() {
            alive = false;
            break;
        }
        let metrics = if server.metrics {
            process.scrape_metrics()
        } else {
            None
        };
        match sampler.sample(t, metrics.as_deref()) {
            Some(sample) => samples.push(sample),
            None => {
                alive = process.exited().is_none();
                if !alive {
                    break;
                }
            }
        }
        if progress && second % 10 == 0 {
            if let Some(s) = samples.last() {
                let phase = if t < phases.clean_end {
                    "clean"
                } else if t < phases.mixed_end {
                    "mixed"
                } else if t < phases.alone_end {
                    "alone"
                } else {
                    "recovery"
                };
                eprintln!(
                    "harness soak: {} {:>4.0}/{:.0}s {phase:<8} rss {:.1} MiB, cpu {:.0}%, {} fds, {} connections",
                    server.name,
                    t,
                    phases.end,
                    s.rss_mib,
                    s.cpu_percent,
                    s.fds,
                    s.connections
                );
            }
        }
        second += 1;
        // Sample on whole seconds of the soak clock.
        let next = Duration::from_secs(second);
        thread::sleep(next.saturating_sub(start.elapsed()));
    }

    // A dead server leaves nothing to wait for: the loadgens are stopped at once.
    let deadline = Instant::now() + if alive { LOADGEN_GRACE } else { Duration::ZERO };
    let mut notes = Vec::new();
    let well_offset = well.started_at;
    let well_summary = well.finish(deadline);
    let bad_summary = bad.map(|b| b.finish(deadline));
    let mut load = Vec::new();
    let mut well_behaved_errors = Default::default();
    let mut well_behaved_warnings = Vec::new();
    match well_summary {
        Ok(summary) => {
            load = summary
                .timeseries
                .iter()
                .map(|p| LoadPoint {
                    t_secs: well_offset + p.t,
                    rps: p.rps,
                    p99_us: p.p99_us,
                })
                .collect();
            well_behaved_errors = summary.requests.errors.clone();
            well_behaved_warnings = summary.warnings.clone();
        }
        Err(e) => notes.push(format!("well-behaved {e}")),
    }
    let misbehaving = match bad_summary {
        Some(Ok(summary)) => summary.misbehaving,
        Some(Err(e)) => {
            notes.push(format!("misbehaving {e}"));
            None
        }
        None => None,
    };
    alive = alive && process.exited().is_none();
    let command = process.command().to_string();
    let exit = match process.stop(options.stop_timeout) {
        ServerExit::Clean { after_secs } => format!("clean after {after_secs:.2}s"),
        ServerExit::Failed { status } => format!("failed: {status}"),
        ServerExit::Killed { timeout_secs } => format!("killed after {timeout_secs:.1}s"),
        ServerExit::Early { status } => format!("exited early: {status}"),
    };
    let verdict = verdict::judge(&phases, baseline_fds, &samples, &load, alive, &spec.limits);
    Ok(ServerSoak {
        name: server.name.clone(),
        command,
        phases,
        baseline_fds,
        samples,
        well_behaved: load,
        well_behaved_errors,
        well_behaved_warnings,
        misbehaving,
        exit,
        notes,
        verdict,
    })
}
