//! Stored baselines: the per-run figures of one build, kept in `reports/baselines/NAME.json` so a
//! later `harness compare --baseline NAME` can judge a candidate when the old build cannot be
//! rebuilt and run next to it.
//!
//! Where it sits: `harness compare --save-baseline NAME` writes the candidate's runs here after a
//! comparison (or a measure-only run); `--baseline NAME` reads them back in place of running a
//! baseline server. Because the two sides then come from different sessions, the comparison is
//! labelled as weaker evidence (see `compare::analysis::Evidence::StoredBaseline`).
//!
//! The file is plain typed JSON (schema [`SCHEMA`]); each point is keyed by the load settings it
//! ran with, and a comparison refuses a stored point measured with different settings.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::compare::analysis::RunFigures;

/// The value of [`StoredBaseline::schema`] this version writes.
pub const SCHEMA: &str = "gev-baseline/1";

/// The directory `harness compare` uses unless told otherwise (relative to the working directory,
/// which is the workspace root in CI).
pub const DEFAULT_DIR: &str = "reports/baselines";

/// What went wrong reading or writing a stored baseline.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("baseline name {0:?} is not allowed: use letters, digits, '.', '_' or '-' (not starting with '.')")]
    BadName(String),
    #[error("no stored baseline {name:?} at {path}: save one first with `harness compare --candidate-cmd CMD --save-baseline {name}`")]
    NotFound { name: String, path: PathBuf },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{path} is not a stored baseline: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path} has schema {found:?}, this harness reads {SCHEMA:?}")]
    Schema { path: PathBuf, found: String },
}

/// Everything stored for one named baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredBaseline {
    /// Always [`SCHEMA`].
    pub schema: String,
    pub name: String,
    /// When the runs were taken (RFC 3339, UTC).
    pub created: String,
    /// The server command that was measured.
    pub command: String,
    /// `git rev-parse HEAD` of the working directory when it was saved, if available.
    pub git_commit: Option<String>,
    /// Host description (CPU model, cores, kernel) from the load generator.
    pub host: String,
    pub points: Vec<StoredPoint>,
}

/// The runs of one load setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPoint {
    /// The load settings, as `compare` labels points (e.g. `loops=1 conns=50 size=64 raw 2s`).
    pub point: String,
    pub runs: Vec<RunFigures>,
}

impl StoredBaseline {
    /// The runs stored for `point`, if that load setting was measured.
    pub fn runs_for(&self, point: &str) -> Option<&[RunFigures]> {
        self.points
            .iter()
            .find(|p| p.point == point)
            .map(|p| p.runs.as_slice())
    }
}

/// Checks that `name` is a plain file stem (no path separators, no hidden files).
pub fn validate_name(name: &str) -> Result<(), BaselineError> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if plain {
        Ok(())
    } else {
        Err(BaselineError::BadName(name.to_string()))
    }
}

/// Where baseline `name` lives under `dir`.
pub fn path_for(dir: &Path, name: &str) -> Result<PathBuf, BaselineError> {
    validate_name(name)?;
    Ok(dir.join(format!("{name}.json")))
}

/// Writes `baseline` to `dir/NAME.json` (creating `dir`), replacing any previous file atomically.
pub fn save(dir: &Path, baseline: &StoredBaseline) -> Result<PathBuf, BaselineError> {
    let path = path_for(dir, &baseline.name)?;
    fs::create_dir_all(dir).map_err(|source| BaselineError::Io {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    let temporary = dir.join(format!(".{}.json.tmp", baseline.name));
    // Serialising plain structs with string keys cannot fail; an empty file would then fail to
    // parse on load with a clear message rather than panic here.
    let text = serde_json::to_string_pretty(baseline).unwrap_or_default();
    fs::write(&temporary, text + "\n").map_err(|source| BaselineError::Io {
        action: "write",
        path: temporary.clone(),
        source,
    })?;
    fs::rename(&temporary, &path).map_err(|source| BaselineError::Io {
        action: "rename into place",
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Reads baseline `name` from `dir`, checking its schema.
pub fn load(dir: &Path, name: &str) -> Result<StoredBaseline, BaselineError> {
    let path = path_for(dir, name)?;
    let text = fs::read_to_string(&path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            BaselineError::NotFound {
                name: name.to_string(),
                path: path.clone(),
            }
        } else {
            BaselineError::Io {
                action: "read",
                path: path.clone(),
                source,
            }
        }
    })?;
    let baseline: StoredBaseline =
        serde_json::from_str(&text).map_err(|source| BaselineError::Parse {
            path: path.clone(),
            source,
        })?;
    if baseline.schema != SCHEMA {
        return Err(BaselineError::Schema {
            path,
            found: baseline.schema,
        });
    }
    Ok(baseline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> StoredBaseline {
        StoredBaseline {
            schema: SCHEMA.to_string(),
            name: name.to_string(),
            created: "2026-11-25T13:00:00Z".to_string(),
            command: "gev-echo --port {port} --loops {loops}".to_string(),
            git_commit: Some("abc123".to_string()),
            host: "test cpu, 2 cores, linux".to_string(),
            points: vec![StoredPoint {
                point: "loops=1 conns=50 size=64 raw 2s".to_string(),
                runs: vec![RunFigures {
                    throughput_rps: 100_000.0,
                    p50_us: 480.0,
                    p99_us: 900.0,
                    server_cpu_us_per_request: None,
                }],
            }],
        }
    }

    #[test]
    fn saved_baselines_read_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let stored = sample("main");
        let path = save(dir.path(), &stored).unwrap();
        assert_eq!(path, dir.path().join("main.json"));
        let loaded = load(dir.path(), "main").unwrap();
        assert_eq!(loaded, stored);
        assert!(loaded.runs_for("loops=1 conns=50 size=64 raw 2s").is_some());
        assert!(loaded.runs_for("loops=2 conns=50 size=64 raw 2s").is_none());
    }

    #[test]
    fn names_cannot_escape_the_directory() {
        for bad in ["", "../x", "a/b", ".hidden", "sp ace"] {
            assert!(
                matches!(validate_name(bad), Err(BaselineError::BadName(_))),
                "{bad:?}"
            );
        }
        for good in ["main", "v1.2.3", "pr-17_base"] {
            assert!(validate_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn missing_wrong_schema_and_garbage_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            load(dir.path(), "absent"),
            Err(BaselineError::NotFound { .. })
        ));
        let mut other = sample("old");
        other.schema = "gev-baseline/0".to_string();
        save(dir.path(), &other).unwrap();
        assert!(matches!(
            load(dir.path(), "old"),
            Err(BaselineError::Schema { .. })
        ));
        fs::write(dir.path().join("junk.json"), "{not json").unwrap();
        let error = load(dir.path(), "junk").unwrap_err();
        assert!(matches!(error, BaselineError::Parse { .. }));
        assert!(error.to_string().contains("junk.json"), "{error}");
    }
}
