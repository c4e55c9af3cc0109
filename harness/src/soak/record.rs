//! `soak.json` (schema `gev-soak/1`): everything a soak measured, per server — the phases, the
//! samples of every second, the well-behaved p99 and throughput of every second, what the
//! misbehaving clients did, and the verdict. Plots are drawn from this data alone.
//!
//! Where it sits: session (`session.rs`) -> **record** -> soak.json, plots (`render.rs`) and the
//! printed table. Add fields with `#[serde(default)]`; never rename or remove.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::sampler::Sample;
use super::verdict::Verdict;

/// The value of [`SoakFile::schema`].
pub const SOAK_SCHEMA: &str = "gev-soak/1";

/// One `harness soak` invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakFile {
    pub schema: String,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// The spec file and the options that were applied.
    pub spec: SpecEcho,
    /// How server and loadgen were placed on cores.
    pub pinning: String,
    pub servers: Vec<ServerSoak>,
}

/// The spec as applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpecEcho {
    pub path: String,
    pub duration_secs: f64,
    pub connections: u64,
    pub well_behaved_connections: u64,
    pub misbehaving_connections: u64,
    pub rate: f64,
    pub size: u64,
    pub loops: u32,
    /// The misbehaving loadgen's `--misbehave` value.
    pub mix: String,
}

/// When each phase ended, seconds since the server's soak began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// End of the clean window (the misbehaving clients start).
    pub clean_end: f64,
    /// End of the mixed window (the well-behaved load stops).
    pub mixed_end: f64,
    /// End of the window with misbehaving clients alone.
    pub alone_end: f64,
    /// End of recovery (the server is stopped).
    pub end: f64,
}

/// One second of the well-behaved load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadPoint {
    /// Seconds since the server's soak began.
    pub t_secs: f64,
    pub rps: f64,
    pub p99_us: f64,
}

/// One server's soak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerSoak {
    pub name: String,
    pub command: String,
    pub phases: PhaseTimes,
    /// Descriptors of the idle server before any client connected.
    pub baseline_fds: u64,
    pub samples: Vec<Sample>,
    pub well_behaved: Vec<LoadPoint>,
    /// The well-behaved loadgen's errors by kind (whole run).
    #[serde(default)]
    pub well_behaved_errors: std::collections::BTreeMap<String, u64>,
    /// The well-behaved loadgen's own warnings (e.g. that it sent late: then the p99 measures
    /// the generator as much as the server).
    #[serde(default)]
    pub well_behaved_warnings: Vec<String>,
    /// What the misbehaving clients did; `None` when their loadgen printed no summary.
    #[serde(default)]
    pub misbehaving: Option<gev_loadgen::Misbehaving>,
    /// How the server ended: "clean", "killed", "failed ..." or "exited early ...".
    pub exit: String,
    /// Problems with the run itself (a loadgen that failed), not the server's verdict.
    #[serde(default)]
    pub notes: Vec<String>,
    pub verdict: Verdict,
}

impl SoakFile {
    /// Write as pretty JSON.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }

    /// Read a soak.json, checking the schema.
    pub fn read(path: &Path) -> Result<SoakFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file: SoakFile = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a soak.json: {e}", path.display()))?;
        if file.schema != SOAK_SCHEMA {
            return Err(format!(
                "{} has schema {:?}, expected {SOAK_SCHEMA:?}",
                path.display(),
                file.schema
            ));
        }
        Ok(file)
    }
}
