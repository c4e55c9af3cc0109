//! The verdict of one server's soak: five checks, each with its figure, its limit and whether it
//! passed. A server fails when any check fails (then `harness soak` exits 1).
//!
//! - **p99**: the well-behaved p99 of the mixed window is at most `p99_ratio` times that of the
//!   clean window. A window's p99 is the 90th percentile of its per-second p99s: a stall longer
//!   than a tenth of the window fails the check, one noisy second (the machine is shared) does
//!   not.
//! - **throughput**: the well-behaved throughput (mean of the per-second rates) in the mixed
//!   window is at least `throughput_ratio` of the clean window's.
//! - **memory**: the slope of RSS over the mixed window after its first quarter (buffers of
//!   the misbehaving connections filling up) has the upper end of its 95% interval below
//!   `memory_slope_mib_per_min`. The slope is fitted by batch means ([`fit::batched_slope`]):
//!   RSS samples a second apart are correlated (a saw-tooth of buffers filled and freed in
//!   cycles), so counting each second as an independent point would claim a precision the data
//!   does not have. Three quarters of the window rather than the second half: the interval of a
//!   slope narrows with the cube of the span, and a leak has longer to show.
//! - **descriptors**: at the end of recovery, with every client gone, the server holds at most
//!   `fd_slack` descriptors above its idle baseline and no TCP connection on its port.
//! - **cpu alone**: with only misbehaving clients left, the server's mean CPU is below
//!   `cpu_alone_percent` of a core.
//! - **alive**: the server was still running when the soak ended.
//!
//! Where it sits: samples and load points (`session.rs`) -> **verdict** -> soak.json, exit code.
//! Windows skip [`SETTLE_SECS`] after each phase change so a transient is not taken for a level.

use serde::{Deserialize, Serialize};

use super::fit::{self, SlopeFit};
use super::record::{LoadPoint, PhaseTimes};
use super::sampler::Sample;
use super::spec::Limits;

/// Which quantile of a window's per-second p99s stands for the window.
pub const WINDOW_QUANTILE: f64 = 0.9;

/// Seconds left out after each phase change.
pub const SETTLE_SECS: f64 = 2.0;

/// Share of the mixed window left out of the memory fit: the misbehaving connections' buffers
/// fill up in it.
pub const MEMORY_WARMUP: f64 = 0.25;

/// One check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// `p99`, `throughput`, `memory`, `descriptors`, `cpu_alone`, `alive`.
    pub name: String,
    pub pass: bool,
    /// The figure and the limit, in words.
    pub detail: String,
}

/// The figures behind the checks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub p99_clean_us: f64,
    pub p99_mixed_us: f64,
    pub p99_ratio: f64,
    pub rps_clean: f64,
    pub rps_mixed: f64,
    pub throughput_ratio: f64,
    /// RSS slope over the mixed window, MiB per minute.
    pub memory_slope_mib_per_min: Option<SlopeFit>,
    pub rss_end_of_mixed_mib: f64,
    pub fds_baseline: u64,
    pub fds_after: u64,
    pub connections_after: u64,
    pub close_wait_after: u64,
    pub cpu_alone_percent: f64,
    pub cpu_mixed_percent: f64,
    pub alive: bool,
}

/// A server's verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub pass: bool,
    pub checks: Vec<Check>,
    pub figures: Figures,
}

fn within(t: f64, from: f64, to: f64) -> bool {
    t >= from && t <= to
}

/// The `q` quantile (nearest rank) of `values`; NaN when empty.
fn quantile(mut values: Vec<f64>, q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// Judge one server.
pub fn judge(
    phases: &PhaseTimes,
    baseline_fds: u64,
    samples: &[Sample],
    load: &[LoadPoint],
    alive: bool,
    limits: &Limits,
) -> Verdict {
    let mut f = Figures {
        fds_baseline: baseline_fds,
        alive,
        ..Figures::default()
    };
    let mut checks = Vec::new();

    // Well-behaved latency and throughput, clean window against mixed window. A second with
    // no completed reply has no p99: it counts as a second of zero throughput.
    let clean: Vec<&LoadPoint> = load
        .iter()
        .filter(|p| within(p.t_secs, SETTLE_SECS, phases.clean_end))
        .collect();
    let mixed: Vec<&LoadPoint> = load
        .iter()
        .filter(|p| within(p.t_secs, phases.clean_end + SETTLE_SECS, phases.mixed_end))
        .collect();
    let p99 = |points: &[&LoadPoint]| {
        quantile(
            points
                .iter()
                .filter(|p| p.p99_us > 0.0)
                .map(|p| p.p99_us)
                .collect(),
            WINDOW_QUANTILE,
        )
    };
    let expected_mixed = (phases.mixed_end - phases.clean_end - SETTLE_SECS).max(1.0);
    f.p99_clean_us = p99(&clean);
    f.p99_mixed_us = p99(&mixed);
    f.p99_ratio = f.p99_mixed_us / f.p99_clean_us;
    f.rps_clean = mean(&clean.iter().map(|p| p.rps).collect::<Vec<_>>());
    // Seconds the loadgen did not report at all (it was stuck) count as zero.
    f.rps_mixed = mixed.iter().map(|p| p.rps).sum::<f64>() / expected_mixed.floor().max(1.0);
    f.throughput_ratio = f.rps_mixed / f.rps_clean;
    let p99_ok = f.p99_ratio.is_finite() && f.p99_ratio <= limits.p99_ratio;
    checks.push(Check {
        name: "p99".into(),
        pass: p99_ok,
        detail: format!(
            "well-behaved p99 {:.0} µs with misbehaving clients vs {:.0} µs clean: {:.2}x (limit {:.2}x)",
            f.p99_mixed_us, f.p99_clean_us, f.p99_ratio, limits.p99_ratio
        ),
    });
    let rps_ok = f.throughput_ratio.is_finite() && f.throughput_ratio >= limits.throughput_ratio;
    checks.push(Check {
        name: "throughput".into(),
        pass: rps_ok,
        detail: format!(
            "well-behaved {:.0} req/s with misbehaving clients vs {:.0} clean: {:.3} (at least {:.2})",
            f.rps_mixed, f.rps_clean, f.throughput_ratio, limits.throughput_ratio
        ),
    });

    // Memory: RSS slope over the mixed window after its first quarter, per minute.
    let fit_from = phases.clean_end + (phases.mixed_end - phases.clean_end) * MEMORY_WARMUP;
    let rss: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| within(s.t_secs, fit_from, phases.mixed_end))
        .map(|s| (s.t_secs / 60.0, s.rss_mib))
        .collect();
    f.rss_end_of_mixed_mib = rss.last().map_or(0.0, |p| p.1);
    f.memory_slope_mib_per_min = fit::batched_slope(&rss);
    let memory_ok = f
        .memory_slope_mib_per_min
        .is_some_and(|fit| fit.high < limits.memory_slope_mib_per_min);
    checks.push(Check {
        name: "memory".into(),
        pass: memory_ok,
        detail: match f.memory_slope_mib_per_min {
            Some(fit) => format!(
                "RSS slope {:+.3} MiB/min (95% interval {:+.3} .. {:+.3}, batch means of {} spans; limit: upper end < {} MiB/min)",
                fit.slope, fit.low, fit.high, fit.n, limits.memory_slope_mib_per_min
            ),
            None => "too few samples in the mixed window to fit a slope".into(),
        },
    });

    // Descriptors and connections after every client left: the last sample of recovery.
    let after = samples
        .iter()
        .rev()
        .find(|s| s.t_secs > phases.alone_end + SETTLE_SECS);
    if let Some(after) = after {
        f.fds_after = after.fds;
        f.connections_after = after.connections;
        f.close_wait_after = after.close_wait;
    }
    let fds_ok = after.is_some()
        && f.fds_after <= baseline_fds + limits.fd_slack
        && f.connections_after == 0;
    checks.push(Check {
        name: "descriptors".into(),
        pass: fds_ok,
        detail: match after {
            Some(_) => format!(
                "{} descriptors after the clients left vs {} idle (slack {}); {} connections still open ({} in CLOSE_WAIT)",
                f.fds_after, baseline_fds, limits.fd_slack, f.connections_after, f.close_wait_after
            ),
            None => "no sample after the clients left (the server died or the soak was cut short)".into(),
        },
    });

    // CPU with only the misbehaving clients left.
    let cpu = |from: f64, to: f64| {
        mean(
            &samples
                .iter()
                .filter(|s| within(s.t_secs, from, to))
                .map(|s| s.cpu_percent)
                .collect::<Vec<_>>(),
        )
    };
    f.cpu_alone_percent = cpu(phases.mixed_end + SETTLE_SECS, phases.alone_end);
    f.cpu_mixed_percent = cpu(phases.clean_end + SETTLE_SECS, phases.mixed_end);
    let cpu_ok = f.cpu_alone_percent.is_finite() && f.cpu_alone_percent < limits.cpu_alone_percent;
    checks.push(Check {
        name: "cpu_alone".into(),
        pass: cpu_ok,
        detail: format!(
            "{:.1}% of a core with only misbehaving clients (limit {:.1}%); {:.1}% with both",
            f.cpu_alone_percent, limits.cpu_alone_percent, f.cpu_mixed_percent
        ),
    });

    checks.push(Check {
        name: "alive".into(),
        pass: alive,
        detail: if alive {
            "running at the end".into()
        } else {
            "the server died during the soak".into()
        },
    });
    // JSON has no NaN: a figure that could not be computed (no data) is written as 0; its check
    // has already failed.
    for value in [
        &mut f.p99_clean_us,
        &mut f.p99_mixed_us,
        &mut f.p99_ratio,
        &mut f.rps_clean,
        &mut f.rps_mixed,
        &mut f.throughput_ratio,
        &mut f.cpu_alone_percent,
        &mut f.cpu_mixed_percent,
    ] {
        if !value.is_finite() {
            *value = 0.0;
        }
    }
    Verdict {
        pass: checks.iter().all(|c| c.pass),
        checks,
        figures: f,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phases() -> PhaseTimes {
        PhaseTimes {
            clean_end: 20.0,
            mixed_end: 70.0,
            alone_end: 85.0,
            end: 100.0,
        }
    }

    fn limits() -> Limits {
        Limits {
            p99_ratio: 2.0,
            throughput_ratio: 0.9,
            memory_slope_mib_per_min: 1.0,
            fd_slack: 4,
            cpu_alone_percent: 5.0,
        }
    }

    /// A healthy server: flat memory, low CPU alone, descriptors back to 5.
    fn healthy(
        rss_growth_per_sec: f64,
        cpu_alone: f64,
        fds_after: u64,
    ) -> (Vec<Sample>, Vec<LoadPoint>) {
        let p = phases();
        let samples = (0..100)
            .map(|t| {
                let t = t as f64;
                Sample {
                    t_secs: t,
                    rss_mib: 10.0
                        + rss_growth_per_sec * t
                        + if t as u64 % 2 == 0 { 0.01 } else { 0.0 },
                    cpu_percent: if t > p.mixed_end && t <= p.alone_end {
                        cpu_alone
                    } else {
                        30.0
                    },
                    fds: if t > p.alone_end { fds_after } else { 1000 },
                    connections: if t > p.alone_end { 0 } else { 1000 },
                    ..Sample::default()
                }
            })
            .collect();
        let load = (1..70)
            .map(|t| LoadPoint {
                t_secs: t as f64,
                rps: 5000.0,
                p99_us: if (t as f64) > p.clean_end {
                    150.0
                } else {
                    100.0
                },
            })
            .collect();
        (samples, load)
    }

    #[test]
    fn quantile_is_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quantile(v.clone(), 0.9), 9.0);
        assert_eq!(quantile(v, 0.5), 5.0);
        assert!(quantile(Vec::new(), 0.9).is_nan());
    }

    #[test]
    fn a_stall_of_a_fifth_of_the_window_fails_p99() {
        let (samples, mut load) = healthy(0.0, 1.0, 5);
        for p in load
            .iter_mut()
            .filter(|p| p.t_secs > 20.0 && p.t_secs <= 30.0)
        {
            p.p99_us = 2_000_000.0;
        }
        let v = judge(&phases(), 5, &samples, &load, true, &limits());
        assert!(!v.checks[0].pass, "{:?}", v.checks[0]);
        // One noisy second does not.
        let (samples, mut load) = healthy(0.0, 1.0, 5);
        load[40].p99_us = 2_000_000.0;
        let v = judge(&phases(), 5, &samples, &load, true, &limits());
        assert!(v.checks[0].pass, "{:?}", v.checks[0]);
    }

    #[test]
    fn a_healthy_server_passes() {
        let (samples, load) = healthy(0.0, 1.0, 5);
        let v = judge(&phases(), 5, &samples, &load, true, &limits());
        assert!(v.pass, "{v:#?}");
        assert!((v.figures.p99_ratio - 1.5).abs() < 1e-9);
    }

    #[test]
    fn each_check_can_fail() {
        // Memory growing 6 MiB/min.
        let (samples, load) = healthy(0.1, 1.0, 5);
        let v = judge(&phases(), 5, &samples, &load, true, &limits());
        assert!(!v.pass && !v.checks[2].pass, "{v:#?}");
        // Spinning alone.
        let (samples, load) = healthy(0.0, 99.0, 5);
        let v = judge(&phases(), 5, &samples, &load, true, &limits());
        assert!(!v.checks[4].pass);
        // Leaked descriptors.
        let (samples, load) = healthy(0.0, 1.0, 300);
        let v = judge(&phases(), 5, &samples, &load, true, &limits());
        assert!(!v.checks[3].pass);
        // Latency blown up, throughput gone, dead.
        let (samples, mut load) = healthy(0.0, 1.0, 5);
        for p in load.iter_mut().filter(|p| p.t_secs > 20.0) {
            p.p99_us = 5000.0;
            p.rps = 100.0;
        }
        let v = judge(&phases(), 5, &samples, &load, false, &limits());
        assert!(!v.checks[0].pass && !v.checks[1].pass && !v.checks[5].pass);
        // A server that died at once: nothing measured, every figure still valid JSON.
        let v = judge(&phases(), 5, &[], &[], false, &limits());
        assert!(v.checks.iter().all(|c| !c.pass));
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(serde_json::from_str::<Verdict>(&json).unwrap(), v);
        // Missing seconds count as zero throughput.
        let (samples, mut load) = healthy(0.0, 1.0, 5);
        load.retain(|p| p.t_secs <= 30.0);
        let v = judge(&phases(), 5, &samples, &load, true, &limits());
        assert!(!v.checks[1].pass, "{:?}", v.checks[1]);
    }
}
