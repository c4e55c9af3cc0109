//! The machine a run happened on (`env` in the summary): CPU model, cores, kernel, and the
//! loadgen version, so figures from different machines are never compared unknowingly.

use crate::summary::Env;

/// Describe this machine.
pub fn detect() -> Env {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, value)| value.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    Env {
        cpu_model,
        cores,
        kernel,
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn detects_something() {
        let env = super::detect();
        assert!(env.cores >= 1);
        assert!(!env.cpu_model.is_empty());
        assert_eq!(env.version, env!("CARGO_PKG_VERSION"));
    }
}
