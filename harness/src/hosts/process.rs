//! A process on a host whose life is tied to the harness: started through `ssh` (or `sh -c`
//! locally), told to stop when the harness closes its stdin, and killed if it will not.
//!
//! Where it sits: multi-host run (`hosts::session`) -> **process** -> server and loadgen on their
//! hosts. A wrapper script starts the program in the background (pinned with `taskset -c` when
//! the hosts table gives `cpus`), prints `gev-harness-pid PID` when asked, and keeps a watcher
//! reading the session's stdin: end of file — the harness closed it, exited, crashed, or the SSH
//! connection died — sends the program SIGINT. The guard's `Drop` closes stdin and, if the
//! program is still there after a grace period, sends SIGKILL over a fresh ssh command, so no
//! server outlives a failed run or the harness.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::ssh::{quote, shell_words, Host, HostCommandError};

/// The line the wrapper prints with the program's pid on the host.
pub const PID_PREFIX: &str = "gev-harness-pid ";
/// How much of a process's stderr is kept for error messages.
const STDERR_TAIL: usize = 4096;
/// How long `Drop` waits after SIGINT before SIGKILL.
const DROP_GRACE: Duration = Duration::from_secs(2);

/// The wrapper: run `argv` (pinned to `cpus`), announce its pid if asked, SIGINT it when stdin
/// closes, exit with its status.
pub fn wrapper_script(argv: &[String], cpus: Option<&str>, announce_pid: bool) -> String {
    let pin = cpus.map_or(String::new(), |cpus| format!("taskset -c {} ", quote(cpus)));
    // A background job of a script starts with SIGINT ignored, which a shell program could not
    // undo; `env --default-signal` (GNU coreutils) restores it before the program runs.
    // The announcing shell prints its own pid and then becomes the program (exec keeps the
    // pid), so the pid line always comes before anything the program prints.
    let announce = if announce_pid {
        format!(
            "sh -c {} sh ",
            quote(&format!("echo \"{PID_PREFIX}$$\"; exec \"$@\""))
        )
    } else {
        String::new()
    };
    format!(
        "exec 3<&0\n\
         {announce}env --default-signal=INT {pin}{program} </dev/null 3<&- &\n\
         pid=$!\n\
         ( cat <&3 >/dev/null; kill -INT \"$pid\" 2>/dev/null ) >/dev/null 2>&1 &\n\
         wait \"$pid\"\n",
        program = shell_words(argv)
    )
}

/// A running wrapped process.
pub struct HostProcess {
    host: Host,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Option<Receiver<String>>,
    stdout_all: Option<thread::JoinHandle<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// The program's pid on its host, once announced.
    pub remote_pid: Option<u32>,
    status: Option<ExitStatus>,
}

impl HostProcess {
    /// Starts `argv` on `host`. With `line_stdout`, stdout is read line by line
    /// ([`HostProcess::next_line`]); otherwise it is collected whole ([`HostProcess::wait_output`]).
    pub fn spawn(
        host: &Host,
        argv: &[String],
        cpus: Option<&str>,
        announce_pid: bool,
        line_stdout: bool,
    ) -> Result<HostProcess, HostCommandError> {
        let script = wrapper_script(argv, cpus, announce_pid);
        let mut command = host.shell(&script);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| {
            host.error(
                &format!("starting {}", argv.first().map_or("", String::as_str)),
                e.to_string(),
                true,
            )
        })?;
        let stdin = child.stdin.take();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let tail = Arc::clone(&stderr);
            thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(read) = pipe.read(&mut chunk) {
                    if read == 0 {
                        break;
                    }
                    if let Ok(mut bytes) = tail.lock() {
                        bytes.extend_from_slice(&chunk[..read]);
                        let excess = bytes.len().saturating_sub(STDERR_TAIL);
                        bytes.drain(..excess);
                    }
                }
            });
        }
        let (lines, stdout_all) = match child.stdout.take() {
            Some(stdout) if line_stdout => {
                let (sender, receiver) = mpsc::channel();
                thread::spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { return };
                        if sender.send(line).is_err() {
                            return;
                        }
                    }
                });
                (Some(receiver), None)
            }
            stdout => (None, Some(super::ssh::drain(stdout))),
        };
        Ok(HostProcess {
            host: host.clone(),
            child: Some(child),
            stdin,
            lines,
            stdout_all,
            stderr,
            remote_pid: None,
            status: None,
        })
    }

    /// The host it runs on.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The next stdout line within `timeout`; pid announcements are taken in passing.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.as_ref()?.recv_timeout(left).ok()?;
            match line.trim().strip_prefix(PID_PREFIX) {
                Some(pid) => self.remote_pid = pid.trim().parse().ok(),
                None => return Some(line),
            }
        }
    }

    /// Its exit status, if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(child) = self.child.as_mut() {
                self.status = child.try_wait().ok().flatten();
            }
        }
        self.status
    }

    /// The last line it wrote to stderr (ssh's own complaints included).
    pub fn stderr_line(&self) -> String {
        let text = self
            .stderr
            .lock()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        super::ssh::last_line(&text)
    }

    /// Asks it to stop (SIGINT through the closed stdin) and waits up to `timeout`; `None` if it
    /// is still running then.
    pub fn stop(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.stdin = None;
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if started.elapsed() >= timeout {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills it: SIGKILL on its host (by the announced pid) and the local ssh client.
    pub fn kill(&mut self) {
        if let Some(pid) = self.remote_pid {
            let _ = self.host.run(
                &format!("kill -KILL {pid} 2>/dev/null || true"),
                "killing a process",
                Duration::from_secs(10),
            );
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            self.status = child.wait().ok();
        }
    }

    /// Waits for it to exit on its own and returns its status and whole stdout (for a process
    /// spawned without `line_stdout`).
    pub fn wait_output(&mut self) -> (Option<ExitStatus>, Vec<u8>) {
        let status = match self.child.as_mut() {
            Some(child) => child.wait().ok(),
            None => self.status,
        };
        self.status = status;
        let stdout = self
            .stdout_all
            .take()
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default();
        (status, stdout)
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        if self.try_status().is_some() {
            return;
        }
        if self.stop(DROP_GRACE).is_none() {
            self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_pid_is_announced_and_closing_stdin_interrupts() {
        let host = Host::local("here");
        // Prints a line, then waits; exits 7 on SIGINT.
        let program = argv(&[
            "sh",
            "-c",
            "trap 'exit 7' INT; echo ready; while :; do sleep 0.05; done",
        ]);
        let mut process = HostProcess::spawn(&host, &program, None, true, true).unwrap();
        assert_eq!(
            process.next_line(Duration::from_secs(10)).as_deref(),
            Some("ready")
        );
        assert!(process.remote_pid.is_some());
        let status = process.stop(Duration::from_secs(10)).expect("stopped");
        assert_eq!(status.code(), Some(7));
    }

    #[test]
    fn a_process_that_ignores_sigint_is_killed_on_drop() {
        let host = Host::local("here");
        let program = argv(&[
            "sh",
            "-c",
            "trap '' INT; echo up; while :; do sleep 0.05; done",
        ]);
        let mut process = HostProcess::spawn(&host, &program, None, true, true).unwrap();
        assert_eq!(
            process.next_line(Duration::from_secs(10)).as_deref(),
            Some("up")
        );
        let pid = process.remote_pid.expect("pid announced");
        let started = Instant::now();
        drop(process);
        assert!(started.elapsed() < Duration::from_secs(15));
        // Give the kernel a moment to reap; the pid must be gone (or a zombie of init).
        thread::sleep(Duration::from_millis(100));
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| !stat.contains(") Z"))
            .unwrap_or(false);
        assert!(!alive, "pid {pid} survived the guard");
    }

    #[test]
    fn output_and_status_are_collected() {
        let host = Host::local("here");
        let mut process =
            HostProcess::spawn(&host, &argv(&["printf", "a b"]), Some("0"), false, false).unwrap();
        let (status, stdout) = process.wait_output();
        assert!(status.unwrap().success());
        assert_eq!(stdout, b"a b");
    }
}
