//! Clock offsets of the hosts, measured over SSH before a multi-host sweep.
//!
//! Where it sits: host checks (`hosts::session`) -> **clock** -> the common start instant of the
//! client hosts (`loadgen --start-at`) and the alignment of their time series (`hosts::merge`).
//! One ssh session per host answers each line it reads with `date +%s%N`; for each exchange the
//! harness notes its own wall clock before sending (`t0`) and after the answer (`t1`). As in NTP,
//! the offset is `remote - (t0 + t1) / 2`, off by at most half the round trip, so of all
//! exchanges the one with the smallest round trip is kept.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime};

use super::ssh::{Host, HostCommandError};

/// Exchanges per host; the best of these is kept.
pub const DEFAULT_ROUNDS: usize = 16;

/// One question and answer: local send time, the host's clock, local receive time (ns since
/// the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exchange {
    pub sent_ns: i128,
    pub remote_ns: i128,
    pub received_ns: i128,
}

/// A host's clock relative to this machine's.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ClockOffset {
    /// remote - local, nanoseconds: the host's clock reads this much ahead.
    pub offset_ns: i64,
    /// The round trip of the exchange the offset came from; the offset's error is at most half.
    pub rtt_ns: u64,
}

impl ClockOffset {
    /// Worst-case distance of the host's clock from this one's: |offset| plus the uncertainty.
    pub fn bound_ns(&self) -> u64 {
        self.offset_ns.unsigned_abs() + self.rtt_ns / 2
    }
}

/// The offset from the exchange with the smallest round trip; `None` without exchanges.
pub fn best(exchanges: &[Exchange]) -> Option<ClockOffset> {
    exchanges
        .iter()
        .filter(|e| e.received_ns >= e.sent_ns)
        .min_by_key(|e| e.received_ns - e.sent_ns)
        .map(|e| ClockOffset {
            offset_ns: (e.remote_ns - (e.sent_ns + e.received_ns) / 2) as i64,
            rtt_ns: (e.received_ns - e.sent_ns) as u64,
        })
}

/// Now, in ns since the Unix epoch.
pub fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Measures `host`'s clock offset with `rounds` exchanges over one session.
pub fn measure(
    host: &Host,
    rounds: usize,
    timeout: Duration,
) -> Result<ClockOffset, HostCommandError> {
    let what = "measuring its clock offset";
    let mut command = host.shell("while read -r _; do date +%s%N; done");
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| host.error(what, format!("cannot start ssh: {e}"), true))?;
    let stderr = super::ssh::drain(child.stderr.take());
    let (sender, answers) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
    }
    let result = (|| {
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| host.error(what, "no stdin", false))?;
        let mut exchanges = Vec::with_capacity(rounds);
        for _ in 0..rounds.max(1) {
            let sent_ns = now_ns();
            stdin
                .write_all(b"\n")
                .and_then(|()| stdin.flush())
                .map_err(|e| host.error(what, format!("session closed: {e}"), true))?;
            let line = answers
                .recv_timeout(timeout)
                .map_err(|_| host.error(what, format!("no answer within {timeout:?}"), true))?;
            let received_ns = now_ns();
            let remote_ns: i128 = line.trim().parse().map_err(|_| {
                host.error(
                    what,
                    format!("`date +%s%N` printed {line:?}, not nanoseconds (GNU date needed)"),
                    false,
                )
            })?;
            exchanges.push(Exchange {
                sent_ns,
                remote_ns,
                received_ns,
            });
        }
        best(&exchanges).ok_or_else(|| host.error(what, "no usable exchange", false))
    })();
    let _ = child.kill();
    let _ = child.wait();
    match result {
        Err(mut error) if error.ssh_failed => {
            let text = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
            if !text.trim().is_empty() {
                error.detail = format!(
                    "{}; ssh said: {}",
                    error.detail,
                    super::ssh::last_line(&text)
                );
            }
            Err(error)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_round_trip_wins() {
        let exchanges = [
            // rtt 10 ms, remote read 5 ms after local midpoint... but uncertain.
            Exchange {
                sent_ns: 0,
                remote_ns: 10_000_000,
                received_ns: 10_000_000,
            },
            // rtt 1 ms: remote is 2 ms ahead of the midpoint.
            Exchange {
                sent_ns: 20_000_000,
                remote_ns: 20_500_000 + 2_000_000,
                received_ns: 21_000_000,
            },
        ];
        let offset = best(&exchanges).unwrap();
        assert_eq!(offset.offset_ns, 2_000_000);
        assert_eq!(offset.rtt_ns, 1_000_000);
        assert_eq!(offset.bound_ns(), 2_500_000);
        assert_eq!(best(&[]), None);
    }

    #[test]
    fn a_behind_clock_has_a_negative_offset() {
        let offset = best(&[Exchange {
            sent_ns: 1_000,
            remote_ns: 500,
            received_ns: 1_200,
        }])
        .unwrap();
        assert_eq!(offset.offset_ns, -600);
    }

    #[test]
    fn this_machine_is_within_its_own_round_trip() {
        let offset = measure(&Host::local("here"), 4, Duration::from_secs(10)).unwrap();
        // The same clock: the offset is within the exchange's own uncertainty.
        assert!(
            offset.offset_ns.unsigned_abs() <= offset.rtt_ns,
            "{offset:?}"
        );
    }
}
