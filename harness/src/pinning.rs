//! Placing the server and the load generator on disjoint cores, so they do not steal each
//! other's time slices and a figure measures the server rather than the scheduler.
//!
//! Where it sits: runner -> **pinning** -> child processes. The plan uses the cores the harness
//! itself may run on (its own affinity mask): the load generator gets the last
//! `loadgen_threads` of them, the server all the others. Affinity is set in the child between
//! fork and exec with `sched_setaffinity`, so no external tool (taskset) is needed and the
//! command line stays as written.
//!
//! With `loadgen_threads` left out of the spec the split is made per point instead
//! ([`Pinning::for_loops`]): the server gets as many cores as it has loops (at most all but
//! one), and loadgen every other core with one worker thread per core, so the generator is as
//! strong as the machine allows without taking cores the server would use.
//!
//! Fallback: with fewer than two usable cores, or `pin = false`, nothing is pinned and the
//! results' environment says so; the figures are then still comparable as ratios within the
//! run, but the server and loadgen compete for the same cores.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Which cores each process may run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinning {
    /// Disjoint core sets.
    Disjoint {
        server: Vec<usize>,
        loadgen: Vec<usize>,
    },
    /// Not pinned; the text says why.
    Unpinned(String),
}

impl Pinning {
    /// Plans pinning over the cores this process may use.
    pub fn plan(enabled: bool, loadgen_threads: usize) -> Pinning {
        if !enabled {
            return Pinning::Unpinned("not pinned: disabled by the spec (pin = false)".into());
        }
        match allowed_cores() {
            Ok(cores) => Pinning::over(&cores, loadgen_threads),
            Err(error) => Pinning::Unpinned(format!(
                "not pinned: cannot read this process's CPU affinity ({error})"
            )),
        }
    }

    /// Plans pinning over `cores`: loadgen on the last `loadgen_threads` (at most all but one),
    /// the server on the rest.
    pub fn over(cores: &[usize], loadgen_threads: usize) -> Pinning {
        if cores.len() < 2 {
            return Pinning::Unpinned(format!(
                "not pinned: {} usable core(s); server and loadgen share them",
                cores.len()
            ));
        }
        let loadgen_count = loadgen_threads.clamp(1, cores.len() - 1);
        let split = cores.len() - loadgen_count;
        Pinning::Disjoint {
            server: cores[..split].to_vec(),
            loadgen: cores[split..].to_vec(),
        }
    }

    /// Plans one point's pinning over `cores`: the server on the first `loops` cores (at most
    /// all but one), loadgen on every other core; returns the plan and loadgen's thread count,
    /// one per loadgen core. With fewer than two cores: unpinned, one loadgen thread.
    pub fn for_loops(cores: &[usize], loops: u32) -> (Pinning, u32) {
        if cores.len() < 2 {
            return (Pinning::over(cores, 1), 1);
        }
        let server_count = (loops as usize).clamp(1, cores.len() - 1);
        let loadgen_count = cores.len() - server_count;
        (
            Pinning::over(cores, loadgen_count),
            u32::try_from(loadgen_count).unwrap_or(u32::MAX),
        )
    }

    /// The server's and loadgen's cores, when pinned.
    pub fn cores(&self) -> Option<(&[usize], &[usize])> {
        match self {
            Pinning::Disjoint { server, loadgen } => Some((server, loadgen)),
            Pinning::Unpinned(_) => None,
        }
    }

    /// A one-line description for the environment record.
    pub fn describe(&self) -> String {
        match self {
            Pinning::Disjoint { server, loadgen } => format!(
                "server on cores {}, loadgen on cores {} (sched_setaffinity)",
                list(server),
                list(loadgen)
            ),
            Pinning::Unpinned(why) => why.clone(),
        }
    }

    /// Restricts the server process `command` will start to its cores.
    pub fn apply_server(&self, command: &mut Command) {
        if let Pinning::Disjoint { server, .. } = self {
            set_affinity_on_spawn(command, server);
        }
    }

    /// Restricts the loadgen process `command` will start to its cores.
    pub fn apply_loadgen(&self, command: &mut Command) {
        if let Pinning::Disjoint { loadgen, .. } = self {
            set_affinity_on_spawn(command, loadgen);
        }
    }
}

fn list(cores: &[usize]) -> String {
    cores
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The cores in this process's affinity mask, ascending.
pub fn allowed_cores() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bit array for which all-zero is a valid (empty) value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed; pid 0 is this process.
    let result =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    let max = libc::CPU_SETSIZE as usize;
    // SAFETY: CPU_ISSET reads one bit of `set`; every index is below CPU_SETSIZE.
    Ok((0..max)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

fn set_affinity_on_spawn(command: &mut Command, cores: &[usize]) {
    // The set is built here, before fork: between fork and exec only async-signal-safe calls
    // are allowed, so the child must not allocate.
    // SAFETY: all-zero is a valid empty cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cores {
        if cpu < libc::CPU_SETSIZE as usize {
            // SAFETY: writes one bit of `set`, index checked against CPU_SETSIZE above.
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
    }
    // SAFETY: the closure runs in the forked child before exec; it only calls
    // sched_setaffinity(2), a plain system call that is async-signal-safe, on a cpu_set_t copied
    // into the closure (no allocation, no locks).
    unsafe {
        command.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cores_split_one_each() {
        assert_eq!(
            Pinning::over(&[0, 1], 1),
            Pinning::Disjoint {
                server: vec![0],
                loadgen: vec![1]
            }
        );
    }

    #[test]
    fn loadgen_never_takes_every_core() {
        assert_eq!(
            Pinning::over(&[2, 3, 5], 8),
            Pinning::Disjoint {
                server: vec![2],
                loadgen: vec![3, 5]
            }
        );
    }

    #[test]
    fn per_point_plans_give_loadgen_every_core_the_server_does_not_use() {
        let cores = [0, 1, 2, 3];
        let (one_loop, threads) = Pinning::for_loops(&cores, 1);
        assert_eq!(
            one_loop,
            Pinning::Disjoint {
                server: vec![0],
                loadgen: vec![1, 2, 3]
            }
        );
        assert_eq!(threads, 3);
        // More loops than cores: the server keeps all but one.
        let (many, threads) = Pinning::for_loops(&cores, 8);
        assert_eq!(many.cores().map(|(s, l)| (s.len(), l.len())), Some((3, 1)));
        assert_eq!(threads, 1);
        // The 2-core machine: one each, whatever the loop count.
        for loops in [1, 2] {
            let (plan, threads) = Pinning::for_loops(&[0, 1], loops);
            assert_eq!(plan.cores(), Some((&[0][..], &[1][..])));
            assert_eq!(threads, 1);
        }
        let (single, threads) = Pinning::for_loops(&[0], 2);
        assert!(matches!(single, Pinning::Unpinned(_)) && threads == 1);
    }

    #[test]
    fn one_core_falls_back_to_unpinned() {
        let plan = Pinning::over(&[0], 1);
        assert!(matches!(plan, Pinning::Unpinned(_)));
        assert!(plan.describe().contains("1 usable core"));
    }

    #[test]
    fn this_process_has_a_core_and_a_pinned_child_runs() {
        let cores = allowed_cores().unwrap();
        assert!(!cores.is_empty());
        let mut command = Command::new("true");
        Pinning::Disjoint {
            server: vec![cores[0]],
            loadgen: vec![cores[0]],
        }
        .apply_server(&mut command);
        assert!(command.status().unwrap().success());
    }
}
