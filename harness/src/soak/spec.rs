//! The soak spec (`sweeps/soak.toml`): which servers, how many connections, the offered rate of
//! the well-behaved ones, the share and mix of misbehaving ones, how the run's duration is split
//! into phases, and the limits each server's verdict is held to.
//!
//! Where it sits: **spec** -> session (`session.rs`: one server through the phases) -> record
//! (`record.rs`: soak.json) -> verdict (`verdict.rs`).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// The spec `harness soak` runs when none is given.
pub const DEFAULT_SOAK_SPEC: &str = "sweeps/soak.toml";

/// A soak spec as written (every field optional; defaults documented on [`SoakSpec`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    servers: Option<Vec<String>>,
    loops: Option<u32>,
    connections: Option<usize>,
    rate: Option<f64>,
    size: Option<usize>,
    misbehaving: Option<f64>,
    mix: Option<Vec<String>>,
    duration: Option<String>,
    loadgen_threads: Option<u32>,
    phases: Option<RawPhases>,
    limits: Option<RawLimits>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhases {
    clean: Option<f64>,
    mixed: Option<f64>,
    alone: Option<f64>,
    recovery: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    p99_ratio: Option<f64>,
    throughput_ratio: Option<f64>,
    memory_slope_mib_per_min: Option<f64>,
    fd_slack: Option<u64>,
    cpu_alone_percent: Option<f64>,
}

/// What fraction of the duration each phase takes (they sum to 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phases {
    /// Well-behaved load only: the baseline window.
    pub clean: f64,
    /// Well-behaved load and the misbehaving mix.
    pub mixed: f64,
    /// Misbehaving clients only (the well-behaved load has ended): CPU must stay low.
    pub alone: f64,
    /// No clients: descriptors and connections must return to the idle baseline.
    pub recovery: f64,
}

/// The limits of a verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Well-behaved p99 (median of per-second p99s) in the mixed window over the clean window.
    pub p99_ratio: f64,
    /// Well-behaved throughput in the mixed window over the clean window, at least.
    pub throughput_ratio: f64,
    /// Upper end of the 95% interval of the RSS slope over the mixed window, MiB per minute.
    pub memory_slope_mib_per_min: f64,
    /// Descriptors the server may hold at the end of recovery above its idle baseline.
    pub fd_slack: u64,
    /// Mean CPU of the server while only misbehaving clients are left, percent of one core.
    pub cpu_alone_percent: f64,
}

/// A checked soak spec.
#[derive(Debug, Clone, PartialEq)]
pub struct SoakSpec {
    /// Built-in server names (default gev-echo and ref-tokio-echo); `--server-cmd` adds more.
    pub servers: Vec<String>,
    /// Event loops / worker threads of each server (default 1).
    pub loops: u32,
    /// All connections, well-behaved and misbehaving (default 1000).
    pub connections: usize,
    /// Offered rate of the well-behaved connections, req/s (default 5000).
    pub rate: f64,
    /// Request payload, bytes (default 64).
    pub size: usize,
    /// Share of `connections` that misbehave (default 0.3).
    pub misbehaving: f64,
    /// The kinds, sharing `misbehaving` equally (default: all eight).
    pub mix: Vec<String>,
    /// Whole run per server (default 10m; `--duration` overrides).
    pub duration: Duration,
    /// loadgen threads of the well-behaved load (default 1).
    pub loadgen_threads: u32,
    pub phases: Phases,
    pub limits: Limits,
}

/// A soak spec that cannot be used; one line naming the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SoakSpecError(pub String);

/// The default mix: every kind once.
pub const DEFAULT_MIX: [&str; 8] = [
    "never-read",
    "slow-read=1000",
    "slow-write",
    "reset",
    "half-close",
    "garbage",
    "abandon",
    "churn",
];

impl SoakSpec {
    /// Read and check the spec at `path`.
    pub fn load(path: &Path) -> Result<SoakSpec, SoakSpecError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SoakSpecError(format!("cannot read soak spec {}: {e}", path.display())))?;
        SoakSpec::parse(&text, &path.display().to_string())
    }

    /// Check the spec text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<SoakSpec, SoakSpecError> {
        let raw: RawSpec = toml::from_str(text).map_err(|e| {
            SoakSpecError(format!(
                "soak spec {origin}: {}",
                e.message().lines().next().unwrap_or("invalid TOML")
            ))
        })?;
        let bad = |m: String| Err(SoakSpecError(format!("soak spec {origin}: {m}")));
        let duration = match &raw.duration {
            Some(text) => match humantime::parse_duration(text) {
                Ok(d) => d,
                Err(_) => {
                    return bad(format!(
                        "duration {text:?} is not a time such as 60s or 10m"
                    ))
                }
            },
            None => Duration::from_secs(600),
        };
        let p = raw.phases.unwrap_or_default();
        let phases = Phases {
            clean: p.clean.unwrap_or(0.2),
            mixed: p.mixed.unwrap_or(0.5),
            alone: p.alone.unwrap_or(0.15),
            recovery: p.recovery.unwrap_or(0.15),
        };
        let sum = phases.clean + phases.mixed + phases.alone + phases.recovery;
        let all = [phases.clean, phases.mixed, phases.alone, phases.recovery];
        if all.iter().any(|f| !(f.is_finite() && *f > 0.0)) || (sum - 1.0).abs() > 1e-6 {
            return bad(format!(
                "phases clean, mixed, alone and recovery must be positive and sum to 1 (they sum to {sum})"
            ));
        }
        let l = raw.limits.unwrap_or_default();
        let limits = Limits {
            p99_ratio: l.p99_ratio.unwrap_or(2.0),
            throughput_ratio: l.throughput_ratio.unwrap_or(0.9),
            memory_slope_mib_per_min: l.memory_slope_mib_per_min.unwrap_or(1.0),
            fd_slack: l.fd_slack.unwrap_or(4),
            cpu_alone_percent: l.cpu_alone_percent.unwrap_or(5.0),
        };
        let spec = SoakSpec {
            servers: raw
                .servers
                .unwrap_or_else(|| vec!["gev-echo".into(), "ref-tokio-echo".into()]),
            loops: raw.loops.unwrap_or(1),
            connections: raw.connections.unwrap_or(1000),
            rate: raw.rate.unwrap_or(5000.0),
            size: raw.size.unwrap_or(64),
            misbehaving: raw.misbehaving.unwrap_or(0.3),
            mix: raw
                .mix
                .unwrap_or_else(|| DEFAULT_MIX.iter().map(|s| s.to_string()).collect()),
            duration,
            loadgen_threads: raw.loadgen_threads.unwrap_or(1).max(1),
            phases,
            limits,
        };
        if spec.connections < 2 {
            return bad("connections must be at least 2".into());
        }
        if !(spec.rate.is_finite() && spec.rate > 0.0) {
            return bad(format!(
                "rate {} must be a positive number of req/s",
                spec.rate
            ));
        }
        if !(spec.misbehaving > 0.0 && spec.misbehaving < 1.0) {
            return bad(format!(
                "misbehaving {} must be a fraction between 0 and 1 (exclusive)",
                spec.misbehaving
            ));
        }
        if spec.mix.is_empty() {
            return bad("mix lists no misbehaviour kind".into());
        }
        let misbehaving = spec.misbehaving_connections();
        if misbehaving < spec.mix.len() {
            return bad(format!(
                "{misbehaving} misbehaving connections cannot cover {} kinds; raise connections or misbehaving",
                spec.mix.len()
            ));
        }
        gev_loadgen::misbehave::Mix::parse(&spec.loadgen_mix())
            .map_err(|e| SoakSpecError(format!("soak spec {origin}: mix: {e}")))?;
        Ok(spec)
    }

    /// Connections that misbehave.
    pub fn misbehaving_connections(&self) -> usize {
        ((self.connections as f64 * self.misbehaving).round() as usize)
            .clamp(1, self.connections - 1)
    }

    /// Connections that run the normal workload.
    pub fn well_behaved_connections(&self) -> usize {
        self.connections - self.misbehaving_connections()
    }

    /// The `--misbehave` value of the misbehaving loadgen: every kind an equal share of its
    /// connections (which all misbehave).
    pub fn loadgen_mix(&self) -> String {
        let n = self.mix.len();
        let total = self.misbehaving_connections();
        // Whole connections per kind, the remainder to the first kinds; fractions of `total`.
        self.mix
            .iter()
            .enumerate()
            .map(|(i, kind)| {
                let count = total / n + usize::from(i < total % n);
                format!("{kind}={}", count as f64 / total as f64)
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Phase lengths for `duration`: (clean, mixed, alone, recovery).
    pub fn phase_lengths(&self, duration: Duration) -> [Duration; 4] {
        let secs = duration.as_secs_f64();
        let p = self.phases;
        [p.clean, p.mixed, p.alone, p.recovery].map(|f| Duration::from_secs_f64(secs * f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_issue() {
        let spec = SoakSpec::parse("", "empty").unwrap();
        assert_eq!(spec.servers, ["gev-echo", "ref-tokio-echo"]);
        assert_eq!(spec.connections, 1000);
        assert_eq!(spec.misbehaving_connections(), 300);
        assert_eq!(spec.well_behaved_connections(), 700);
        let mix = gev_loadgen::misbehave::Mix::parse(&spec.loadgen_mix()).unwrap();
        assert_eq!(
            mix.counts(300).unwrap().iter().map(|c| c.1).sum::<usize>(),
            300
        );
        let lengths = spec.phase_lengths(Duration::from_secs(100));
        assert_eq!(lengths[0], Duration::from_secs(20));
        assert_eq!(lengths[1], Duration::from_secs(50));
    }

    #[test]
    fn rejections_name_the_key() {
        for (text, needle) in [
            ("misbehaving = 1.5", "misbehaving"),
            ("mix = [\"nope\"]", "mix"),
            ("duration = \"soon\"", "duration"),
            ("[phases]\nclean = 0.5", "sum to 1"),
            ("bogus = 1", "bogus"),
            ("connections = 10\nmisbehaving = 0.1", "cannot cover"),
        ] {
            let err = SoakSpec::parse(text, "t.toml").unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(!err.contains('\n'), "{text}: {err}");
        }
    }
}
