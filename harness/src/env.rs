//! The environment record: which machine, kernel, compiler and commit produced the figures, and
//! how loaded the machine was when the sweep started.
//!
//! Where it sits: sweep start -> **environment** -> results.json and env.txt. Every probe is
//! best effort: what cannot be read is `unknown` (or `None`), never an error, because a missing
//! `git` or `rustc` must not stop a benchmark.

use std::path::Path;
use std::process::Command;

use gev_reports::results::Environment;

use crate::pinning::Pinning;

/// Probes the machine; `workspace` is where `git` is asked for the commit.
pub fn capture(workspace: &Path, pinning: &Pinning) -> Environment {
    Environment {
        cpu: cpu_model().unwrap_or_else(|| "unknown".into()),
        cores: crate::pinning::allowed_cores()
            .map(|cores| cores.len())
            .unwrap_or_else(|_| std::thread::available_parallelism().map_or(1, |n| n.get()))
            as u32,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|text| text.trim().to_string())
            .unwrap_or_else(|_| "unknown".into()),
        rustc: command_line("rustc", &["--version"], None).unwrap_or_else(|| "unknown".into()),
        git_commit: git_commit(workspace),
        pinning: pinning.describe(),
        load_average: load_average(),
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text
        .split_whitespace()
        .map(|field| field.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
}

fn git_commit(workspace: &Path) -> Option<String> {
    let commit = command_line("git", &["rev-parse", "HEAD"], Some(workspace))?;
    let changed = command_line(
        "git",
        &["status", "--porcelain", "--untracked-files=no"],
        Some(workspace),
    )
    .is_some_and(|status| !status.is_empty());
    Some(if changed {
        format!("{commit}-dirty")
    } else {
        commit
    })
}

/// The trimmed stdout of a command that succeeded.
fn command_line(program: &str, args: &[&str], dir: Option<&Path>) -> Option<String> {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// env.txt: one `key: value` line per fact.
pub fn env_text(environment: &Environment, extra: &[(String, String)]) -> String {
    let mut lines = vec![
        ("cpu".to_string(), environment.cpu.clone()),
        ("cores".to_string(), environment.cores.to_string()),
        ("kernel".to_string(), environment.kernel.clone()),
        ("rustc".to_string(), environment.rustc.clone()),
        (
            "git commit".to_string(),
            environment
                .git_commit
                .clone()
                .unwrap_or_else(|| "unknown".into()),
        ),
        ("pinning".to_string(), environment.pinning.clone()),
        (
            "load average at start".to_string(),
            environment
                .load_average
                .map_or("unknown".into(), |[a, b, c]| format!("{a} {b} {c}")),
        ),
        ("harness".to_string(), environment.harness_version.clone()),
    ];
    lines.extend(extra.iter().cloned());
    lines
        .into_iter()
        .map(|(key, value)| format!("{key}: {value}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_fills_every_field() {
        let environment = capture(Path::new("."), &Pinning::Unpinned("test".into()));
        assert!(environment.cores >= 1);
        assert!(!environment.cpu.is_empty() && !environment.kernel.is_empty());
        assert_eq!(environment.pinning, "test");
        let text = env_text(&environment, &[("spec".into(), "x.toml".into())]);
        assert!(text.contains("cores: ") && text.ends_with("spec: x.toml\n"));
    }
}
