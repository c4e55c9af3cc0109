//! Process-wide values of the exposition: uptime and build version.
//!
//! Uptime is measured from the process's start as the kernel recorded it (Linux: the
//! `starttime` field of `/proc/self/stat`, in clock ticks since boot, against `/proc/uptime`),
//! so it is right even when the server is started long after the process. Where `/proc` is not
//! available it falls back to the time since the first metrics server of the process started.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::render::ProcessInfo;

/// The first time a metrics server started in this process (the fallback origin of uptime).
static FALLBACK_ORIGIN: OnceLock<Instant> = OnceLock::new();

/// Fixes the fallback origin; called when a metrics server starts.
pub(crate) fn mark_start() {
    FALLBACK_ORIGIN.get_or_init(Instant::now);
}

/// The process-wide values for one scrape.
pub(crate) fn process_info() -> ProcessInfo {
    ProcessInfo {
        uptime_seconds: uptime().as_secs_f64(),
        version: env!("CARGO_PKG_VERSION"),
    }
}

/// Time since the process started.
fn uptime() -> Duration {
    proc_uptime().unwrap_or_else(|| FALLBACK_ORIGIN.get_or_init(Instant::now).elapsed())
}

/// Linux: system uptime minus the process start time, both from `/proc`.
fn proc_uptime() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let system_uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let start_ticks = start_time_ticks(&stat)?;
    let system_seconds: f64 = system_uptime.split_whitespace().next()?.parse().ok()?;
    let start_seconds = start_ticks as f64 / clock_ticks_per_second()? as f64;
    Some(Duration::from_secs_f64(
        (system_seconds - start_seconds).max(0.0),
    ))
}

/// Field 22 (`starttime`) of `/proc/<pid>/stat`. The command name (field 2) is in parentheses
/// and may contain spaces or parentheses, so fields are counted after its last `)`.
fn start_time_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards, so field 22 is the 20th.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// `sysconf(_SC_CLK_TCK)`: the unit of `starttime` (100 on practically every Linux).
fn clock_ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf takes an integer name and returns an integer; it has no pointer
    // arguments, no preconditions and no effect on memory Rust can see.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_odd_command_names() {
        let stat = "14970 (a) b) c) R 14966 14966 6864 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 57696 3133440 410";
        assert_eq!(start_time_ticks(stat), Some(57696));
        assert_eq!(start_time_ticks("garbage"), None);
        assert_eq!(start_time_ticks("1 (x) R 2 3"), None);
    }

    #[test]
    fn uptime_is_plausible_and_grows() {
        let first = uptime();
        assert!(first < Duration::from_secs(60 * 60 * 24 * 365));
        std::thread::sleep(Duration::from_millis(30));
        assert!(uptime() >= first);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_uptime_comes_from_proc() {
        assert!(proc_uptime().is_some());
    }
}
