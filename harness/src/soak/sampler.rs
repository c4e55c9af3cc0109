//! Once a second, what the server process holds: resident memory, CPU time, open descriptors and
//! its TCP connections, read from /proc (so it works for any server), plus the open-connection
//! gauge of its metrics endpoint when it has one.
//!
//! Where it sits: session (`session.rs`, the clock) -> **sampler** -> samples in soak.json ->
//! verdict and plots. Connections are counted from `/proc/<pid>/net/tcp{,6}`: every socket whose
//! local port is the server's and that is neither listening nor in TIME_WAIT (TIME_WAIT belongs
//! to the kernel, not the process); CLOSE_WAIT (the peer closed, the server never did) is also
//! counted on its own, because a pile of those is the classic leak.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// TCP states in /proc/net/tcp (include/net/tcp_states.h).
const TCP_TIME_WAIT: u8 = 0x06;
const TCP_CLOSE_WAIT: u8 = 0x08;
const TCP_LISTEN: u8 = 0x0A;

/// One second of the server's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the soak of this server began (after its idle baseline was taken).
    pub t_secs: f64,
    /// Resident set size, MiB.
    pub rss_mib: f64,
    /// CPU used since the previous sample, percent of one core.
    pub cpu_percent: f64,
    /// Open file descriptors.
    pub fds: u64,
    /// Server-side TCP connections (not listening, not TIME_WAIT).
    pub connections: u64,
    /// Of those, in CLOSE_WAIT.
    pub close_wait: u64,
    /// `gev_connections_open` summed over loops, when the server has a metrics endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_connections: Option<f64>,
}

/// Reads one process's figures; keeps the previous CPU reading to turn time into a rate.
#[derive(Debug)]
pub struct ProcSampler {
    pid: u32,
    port: u16,
    last_cpu: Option<(f64, Instant)>,
    ticks_per_sec: f64,
}

impl ProcSampler {
    /// A sampler for process `pid` serving on `port`.
    pub fn new(pid: u32, port: u16) -> ProcSampler {
        // SAFETY: sysconf only reads a configuration value.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        ProcSampler {
            pid,
            port,
            last_cpu: None,
            ticks_per_sec: if ticks > 0 { ticks as f64 } else { 100.0 },
        }
    }

    /// Sample now; `None` when the process is gone.
    pub fn sample(&mut self, t_secs: f64, metrics: Option<&str>) -> Option<Sample> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())?;
        let cpu_secs = self.cpu_secs()?;
        let now = Instant::now();
        let cpu_percent = match self.last_cpu {
            Some((before, at)) => {
                let wall = now.duration_since(at).as_secs_f64();
                if wall > 0.0 {
                    100.0 * (cpu_secs - before).max(0.0) / wall
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last_cpu = Some((cpu_secs, now));
        let fds = self.fds()?;
        let (connections, close_wait) = self.connections();
        Some(Sample {
            t_secs,
            rss_mib: rss_kib / 1024.0,
            cpu_percent,
            fds,
            connections,
            close_wait,
            metrics_connections: metrics.and_then(open_connections),
        })
    }

    /// Open descriptors now.
    pub fn fds(&self) -> Option<u64> {
        Some(
            std::fs::read_dir(format!("/proc/{}/fd", self.pid))
                .ok()?
                .count() as u64,
        )
    }

    /// User plus system CPU time of the whole process (exited threads included), seconds.
    fn cpu_secs(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // The command name may hold spaces; fields resume after its closing parenthesis.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state is field 3 of stat(5), so utime (14) and stime (15) are at 11, 12.
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / self.ticks_per_sec)
    }

    /// (connections, of which CLOSE_WAIT) on the server's port.
    fn connections(&self) -> (u64, u64) {
        let mut total = 0;
        let mut close_wait = 0;
        for table in ["tcp", "tcp6"] {
            let Ok(text) = std::fs::read_to_string(format!("/proc/{}/net/{table}", self.pid))
            else {
                continue;
            };
            for (port, state) in text.lines().skip(1).filter_map(parse_tcp_line) {
                if port != self.port || state == TCP_LISTEN || state == TCP_TIME_WAIT {
                    continue;
                }
                total += 1;
                if state == TCP_CLOSE_WAIT {
                    close_wait += 1;
                }
            }
        }
        (total, close_wait)
    }
}

/// Local port and state of one /proc/net/tcp line
/// (`sl local_address rem_address st ...`, addresses as `HEXIP:HEXPORT`).
fn parse_tcp_line(line: &str) -> Option<(u16, u8)> {
    let mut fields = line.split_whitespace();
    let local = fields.nth(1)?;
    let state = fields.nth(1)?;
    let port = u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()?;
    let state = u8::from_str_radix(state, 16).ok()?;
    Some((port, state))
}

/// The sum of `gev_connections_open` samples (one per loop) in Prometheus text.
fn open_connections(text: &str) -> Option<f64> {
    gev_reports::prometheus::sum_samples(text, "gev_connections_open")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_tcp() {
        let line = "   0: 0100007F:0729 0100007F:D2F0 08 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 10 0";
        assert_eq!(parse_tcp_line(line), Some((0x729, TCP_CLOSE_WAIT)));
        assert_eq!(parse_tcp_line("garbage"), None);
    }

    #[test]
    fn sums_the_connection_gauge() {
        let text = "# HELP gev_connections_open x\ngev_connections_open{loop=\"0\"} 2\ngev_connections_open{loop=\"1\"} 3\ngev_accepts_total{loop=\"0\"} 9\n";
        assert_eq!(open_connections(text), Some(5.0));
        assert_eq!(open_connections("nothing"), None);
    }

    #[test]
    fn samples_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_server_side, _) = listener.accept().unwrap();
        let mut sampler = ProcSampler::new(std::process::id(), port);
        let sample = sampler.sample(0.0, None).unwrap();
        assert!(sample.rss_mib > 0.0);
        assert!(sample.fds >= 3);
        assert_eq!(sample.connections, 1);
        assert_eq!(sample.close_wait, 0);
        assert!(ProcSampler::new(u32::MAX, 1).sample(0.0, None).is_none());
    }
}
