//! The deterministic companion of the timing gate: instructions executed per echoed message,
//! counted by valgrind's callgrind, which does not care how busy the machine is.
//!
//! Where it sits: `harness compare --callgrind` runs each server command once more, under
//! `valgrind --tool=callgrind` with one loop, while a blocking client in this process does a fixed
//! number of ping-pongs on one connection (the client is not under valgrind, so only the server's
//! instructions count). Startup and shutdown cost the same whatever the count, so two runs — a
//! short one and a long one — are subtracted: `(Ir(long) - Ir(short)) / (long - short messages)`
//! is the echo path's cost per message. Baseline and candidate are then compared exactly (a delta
//! in percent), next to the timing table.
//!
//! What it does not see: time-driven work (timers, idle checks) still adds a little, since a run
//! under valgrind is slow; the figure is stable to well under 1% in practice, against 5–30% noise
//! for timings on a shared machine.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the instruction counts are taken; every field has a documented default.
#[derive(Debug, Clone, PartialEq)]
pub struct CallgrindOptions {
    /// The valgrind executable (default `valgrind`, found on `PATH`).
    pub valgrind: PathBuf,
    /// Ping-pongs of the long run beyond the short one: the divisor (default 10 000).
    pub messages: u64,
    /// Ping-pongs of the short run, which absorbs warm-up of the echo path (default 1 000).
    pub startup_messages: u64,
    /// Bytes per message (default 64).
    pub payload_size: usize,
    /// Bound on each step: startup, the ping-pongs, and the exit that writes the profile
    /// (default 120 s; valgrind runs code 20–50× slower).
    pub timeout: Duration,
}

impl Default for CallgrindOptions {
    fn default() -> Self {
        CallgrindOptions {
            valgrind: PathBuf::from("valgrind"),
            messages: 10_000,
            startup_messages: 1_000,
            payload_size: 64,
            timeout: Duration::from_secs(120),
        }
    }
}

/// What went wrong taking an instruction count.
#[derive(Debug, thiserror::Error)]
pub enum CallgrindError {
    #[error("cannot run {valgrind}: {source} (install valgrind, e.g. `apt-get install valgrind`, or drop --callgrind)")]
    Valgrind { valgrind: String, source: io::Error },
    #[error("server command is empty")]
    EmptyCommand,
    #[error("{command:?} under callgrind did not print `listening on <addr>` within {timeout:?}; its stderr ends with:\n{stderr_tail}")]
    NoListeningLine {
        command: String,
        timeout: Duration,
        stderr_tail: String,
    },
    #[error("echo client against {addr}: {source}")]
    Client { addr: SocketAddr, source: io::Error },
    #[error("server at {addr} echoed different bytes for message {index}")]
    EchoMismatch { addr: SocketAddr, index: u64 },
    #[error("{command:?} did not exit within {timeout:?} of SIGINT (killed); no profile written")]
    DidNotExit { command: String, timeout: Duration },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{path} has no `totals:` or `summary:` line with an Ir count")]
    NoTotals { path: PathBuf },
    #[error("the long run counted fewer instructions ({long}) than the short run ({short}); the server is doing time-driven work that swamps the echo path")]
    NotMonotonic { short: u64, long: u64 },
}

/// Instructions per echoed message for one server build.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InstructionCount {
    /// `(long_total - short_total) / messages`.
    pub instructions_per_message: f64,
    /// Ir of the whole process for the short run.
    pub short_total: u64,
    /// Ir of the whole process for the long run.
    pub long_total: u64,
    /// The difference in ping-pongs between the two runs.
    pub messages: u64,
}

/// Baseline against candidate, compared exactly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CallgrindComparison {
    pub baseline: InstructionCount,
    pub candidate: InstructionCount,
    /// `100 * (candidate / baseline - 1)`: positive means the candidate does more work.
    pub delta_percent: f64,
}

impl CallgrindComparison {
    pub fn new(baseline: InstructionCount, candidate: InstructionCount) -> CallgrindComparison {
        CallgrindComparison {
            delta_percent: 100.0
                * (candidate.instructions_per_message / baseline.instructions_per_message - 1.0),
            baseline,
            candidate,
        }
    }
}

/// Counts the instructions per echoed message of the server started by `argv` (which must bind
/// the port it is given as 0 and run one loop; see `compare`, which substitutes them).
pub fn measure(
    argv: &[String],
    options: &CallgrindOptions,
) -> Result<InstructionCount, CallgrindError> {
    let short_total = total_instructions(argv, options.startup_messages, options)?;
    let long_total =
        total_instructions(argv, options.startup_messages + options.messages, options)?;
    if long_total < short_total {
        return Err(CallgrindError::NotMonotonic {
            short: short_total,
            long: long_total,
        });
    }
    Ok(InstructionCount {
        instructions_per_message: (long_total - short_total) as f64 / options.messages as f64,
        short_total,
        long_total,
        messages: options.messages,
    })
}

/// Kills the child if it is still running when dropped, so no server outlives an error.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs the server under callgrind, does `messages` ping-pongs, stops it with SIGINT and returns
/// the process's total Ir.
fn total_instructions(
    argv: &[String],
    messages: u64,
    options: &CallgrindOptions,
) -> Result<u64, CallgrindError> {
    let (program, args) = argv.split_first().ok_or(CallgrindError::EmptyCommand)?;
    let command_text = argv.join(" ");
    let scratch = tempfile::tempdir().map_err(|source| CallgrindError::Io {
        action: "create a temporary directory in",
        path: std::env::temp_dir(),
        source,
    })?;
    let profile = scratch.path().join("callgrind.out");
    let stderr_path = scratch.path().join("stderr.log");
    let stderr_file = fs::File::create(&stderr_path).map_err(|source| CallgrindError::Io {
        action: "create",
        path: stderr_path.clone(),
        source,
    })?;
    let child = Command::new(&options.valgrind)
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", profile.display()))
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr_file)
        .spawn()
        .map_err(|source| CallgrindError::Valgrind {
            valgrind: options.valgrind.display().to_string(),
            source,
        })?;
    let mut server = ChildGuard(child);
    let addr = match server
        .0
        .stdout
        .take()
        .and_then(|out| wait_for_listening(out, options.timeout))
    {
        Some(addr) => addr,
        None => {
            return Err(CallgrindError::NoListeningLine {
                command: command_text,
                timeout: options.timeout,
                stderr_tail: tail_of(&stderr_path),
            })
        }
    };
    ping_pong(addr, messages, options)?;
    stop(&mut server.0, &command_text, options.timeout)?;
    let text = fs::read_to_string(&profile).map_err(|source| CallgrindError::Io {
        action: "read the callgrind profile",
        path: profile.clone(),
        source,
    })?;
    parse_total_ir(&text).ok_or(CallgrindError::NoTotals { path: profile })
}

/// Reads the server's stdout on a helper thread until `listening on <addr>` or the timeout.
fn wait_for_listening(stdout: impl Read + Send + 'static, timeout: Duration) -> Option<SocketAddr> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                let _ = sender.send(addr.trim().parse::<SocketAddr>().ok());
                // Keep draining so the server never blocks on a full pipe.
                continue;
            }
        }
    });
    let addr = receiver.recv_timeout(timeout).ok().flatten()?;
    // A server bound to 0.0.0.0 / :: is reached on loopback.
    let ip = if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        }
    } else {
        addr.ip()
    };
    Some(SocketAddr::new(ip, addr.port()))
}

/// One connection, `messages` times: write a message, read the whole echo back, check it.
fn ping_pong(
    addr: SocketAddr,
    messages: u64,
    options: &CallgrindOptions,
) -> Result<(), CallgrindError> {
    let client_error = |source| CallgrindError::Client { addr, source };
    let mut stream = TcpStream::connect_timeout(&addr, options.timeout).map_err(client_error)?;
    stream.set_nodelay(true).map_err(client_error)?;
    stream
        .set_read_timeout(Some(options.timeout))
        .map_err(client_error)?;
    let mut message = vec![0u8; options.payload_size.max(1)];
    let mut echo = vec![0u8; message.len()];
    for index in 0..messages {
        for (offset, byte) in message.iter_mut().enumerate() {
            *byte = (index as usize).wrapping_add(offset) as u8;
        }
        stream.write_all(&message).map_err(client_error)?;
        stream.read_exact(&mut echo).map_err(client_error)?;
        if echo != message {
            return Err(CallgrindError::EchoMismatch { addr, index });
        }
    }
    Ok(())
}

/// SIGINT, then wait (valgrind writes the profile on exit); SIGKILL and fail after `timeout`.
fn stop(child: &mut Child, command: &str, timeout: Duration) -> Result<(), CallgrindError> {
    let pid = child.id() as libc::pid_t;
    // SAFETY: `pid` is our own child, not yet reaped (we hold the `Child`), so it cannot name an
    // unrelated process; kill(2) has no memory effects.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return Ok(()),
            Ok(None) if std::time::Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CallgrindError::DidNotExit {
                    command: command.to_string(),
                    timeout,
                });
            }
        }
    }
}

/// The whole-program Ir from a callgrind profile (`totals:` in current versions, `summary:` in
/// older ones; the first event column is Ir by default).
fn parse_total_ir(profile: &str) -> Option<u64> {
    let value_of = |prefix: &str| {
        profile.lines().find_map(|line| {
            line.strip_prefix(prefix)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|first| first.parse::<u64>().ok())
        })
    };
    value_of("totals:").or_else(|| value_of("summary:"))
}

fn tail_of(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_read_from_either_profile_format() {
        let current =
            "version: 1\ncreator: callgrind-3.22.0\nevents: Ir\nfn=main\n0 5\ntotals: 123456\n";
        assert_eq!(parse_total_ir(current), Some(123_456));
        let older = "events: Ir Dr\nsummary: 987 65\n";
        assert_eq!(parse_total_ir(older), Some(987));
        assert_eq!(parse_total_ir("events: Ir\n"), None);
    }

    #[test]
    fn delta_is_relative_to_the_baseline() {
        let count = |per_message| InstructionCount {
            instructions_per_message: per_message,
            short_total: 0,
            long_total: 0,
            messages: 10_000,
        };
        let comparison = CallgrindComparison::new(count(2_000.0), count(2_100.0));
        assert!((comparison.delta_percent - 5.0).abs() < 1e-9);
    }

    #[test]
    fn missing_valgrind_is_a_clear_error() {
        let options = CallgrindOptions {
            valgrind: PathBuf::from("/nonexistent/valgrind"),
            ..CallgrindOptions::default()
        };
        let error = measure(&["true".to_string()], &options).unwrap_err();
        assert!(matches!(error, CallgrindError::Valgrind { .. }), "{error}");
        assert!(error.to_string().contains("install valgrind"));
    }

    proptest::proptest! {
        #[test]
        fn any_total_reads_back_whatever_surrounds_it(
            total in proptest::prelude::any::<u64>(),
            noise in proptest::collection::vec("[a-z]{1,8}: [0-9 ]{0,20}", 0..10),
        ) {
            let mut profile = noise.iter().filter(|l| !l.starts_with("totals") && !l.starts_with("summary")).cloned().collect::<Vec<_>>();
            profile.push(format!("totals: {total}"));
            proptest::prop_assert_eq!(parse_total_ir(&profile.join("\n")), Some(total));
        }
    }
}
