//! Reaching a host: this machine directly, or another one with the system's OpenSSH client.
//!
//! Where it sits: hosts table (`hosts::table`) -> **ssh** -> every remote step (checks, clock,
//! server, loadgen). Every remote command runs as `ssh -o BatchMode=yes` through one
//! ControlMaster socket per host (in a private temp dir, `ControlPersist`), so a whole sweep opens
//! one SSH connection per host and each later command costs a round trip, not a handshake. User,
//! port and identity come from the hosts table or `~/.ssh/config` (or the table's `ssh_config`).
//! A local host runs the same scripts with `sh -c`, so both paths share one code path.
//!
//! Exit status 255 is OpenSSH's own failure (unreachable, authentication, lost connection);
//! everything else is the remote command's status. [`is_ssh_failure`] tells them apart.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How long an idle master connection stays up after the last command (it is closed explicitly
/// at the end of a sweep; this bounds its life if the harness is killed).
pub const CONTROL_PERSIST: &str = "120s";
/// Keepalive: a host that stops answering is declared lost after about 3 × 2 s.
const SERVER_ALIVE: [&str; 4] = ["-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3"];

/// Where a host's commands run.
#[derive(Debug, Clone, PartialEq)]
pub enum Reach {
    /// This machine.
    Local,
    /// Another machine, over SSH.
    Ssh {
        /// `[user@]host` as ssh takes it (may be an alias from the ssh config).
        destination: String,
        port: Option<u16>,
        identity: Option<PathBuf>,
    },
}

/// A host, named as in the hosts table, with the options every ssh call uses.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub reach: Reach,
    ssh_options: Vec<String>,
    /// Keeps the control socket directory alive as long as any clone of the host.
    _control_dir: Option<Arc<tempfile::TempDir>>,
}

/// A command on a host that failed; the message names the host.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("host {host} ({reached_by}): {what}: {detail}")]
pub struct HostCommandError {
    pub host: String,
    pub reached_by: String,
    pub what: String,
    pub detail: String,
    /// Whether ssh itself failed (host unreachable or connection lost), not the command.
    pub ssh_failed: bool,
}

/// Whether an exit status is OpenSSH's own failure rather than the remote command's.
pub fn is_ssh_failure(reach: &Reach, status: &ExitStatus) -> bool {
    matches!(reach, Reach::Ssh { .. }) && status.code() == Some(255)
}

/// Quotes `text` for a POSIX shell: single quotes, with embedded ones closed and escaped.
pub fn quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A command line as one shell string, every word quoted.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| quote(arg))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Host {
    /// A host running commands on this machine.
    pub fn local(name: &str) -> Host {
        Host {
            name: name.to_string(),
            reach: Reach::Local,
            ssh_options: Vec::new(),
            _control_dir: None,
        }
    }

    /// A host reached with ssh; `control_dir` holds its ControlMaster socket, `ssh_config` is
    /// passed as `-F` when given, `connect_timeout` as `ConnectTimeout`.
    pub fn ssh(
        name: &str,
        reach: Reach,
        control_dir: Arc<tempfile::TempDir>,
        ssh_config: Option<&Path>,
        connect_timeout: Duration,
    ) -> Host {
        let mut options: Vec<String> = Vec::new();
        if let Some(config) = ssh_config {
            options.push("-F".into());
            options.push(config.display().to_string());
        }
        let control_path = control_dir.path().join(format!("{name}.sock"));
        for option in [
            "BatchMode=yes".to_string(),
            "ControlMaster=auto".to_string(),
            format!("ControlPath={}", control_path.display()),
            format!("ControlPersist={CONTROL_PERSIST}"),
            format!("ConnectTimeout={}", connect_timeout.as_secs().max(1)),
        ] {
            options.push("-o".into());
            options.push(option);
        }
        options.extend(SERVER_ALIVE.iter().map(|s| s.to_string()));
        if let Reach::Ssh { port, identity, .. } = &reach {
            if let Some(port) = port {
                options.push("-p".into());
                options.push(port.to_string());
            }
            if let Some(identity) = identity {
                options.push("-i".into());
                options.push(identity.display().to_string());
            }
        }
        Host {
            name: name.to_string(),
            reach,
            ssh_options: options,
            _control_dir: Some(control_dir),
        }
    }

    /// How the host is reached, for messages and results: `local` or `ssh root@h -p 2222`.
    pub fn reached_by(&self) -> String {
        match &self.reach {
            Reach::Local => "local".into(),
            Reach::Ssh {
                destination, port, ..
            } => match port {
                Some(port) => format!("ssh {destination} -p {port}"),
                None => format!("ssh {destination}"),
            },
        }
    }

    /// A command that runs the POSIX shell `script` on the host (stdin, stdout and stderr are the
    /// caller's to set).
    pub fn shell(&self, script: &str) -> Command {
        match &self.reach {
            Reach::Local => {
                let mut command = Command::new("sh");
                command.arg("-c").arg(script);
                command
            }
            Reach::Ssh { destination, .. } => {
                let mut command = Command::new("ssh");
                command
                    .args(&self.ssh_options)
                    .arg("-T")
                    .arg(destination)
                    .arg("--")
                    // The login shell may not be POSIX; hand the script to sh explicitly.
                    .arg(format!("sh -c {}", quote(script)));
                command
            }
        }
    }

    /// Runs `script` and returns its stdout; a non-zero exit, or no exit within `timeout`, is an
    /// error naming the host, `what` was being done and the last line of stderr.
    pub fn run(
        &self,
        script: &str,
        what: &str,
        timeout: Duration,
    ) -> Result<String, HostCommandError> {
        let mut command = self.shell(script);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.finish(command, what, timeout)
    }

    /// Copies a local file to `remote` on the host (`scp` through the same master; `cp` locally).
    pub fn copy_to(
        &self,
        local: &Path,
        remote: &Path,
        timeout: Duration,
    ) -> Result<(), HostCommandError> {
        let what = format!("copying {} to {}", local.display(), remote.display());
        let mut command = match &self.reach {
            Reach::Local => {
                let mut command = Command::new("cp");
                command.arg(local).arg(remote);
                command
            }
            Reach::Ssh {
                destination, port, ..
            } => {
                let mut command = Command::new("scp");
                // scp spells the port -P; every other option is shared with ssh.
                let mut options = self.ssh_options.clone();
                if let Some(index) = options.iter().position(|o| o == "-p") {
                    options[index] = "-P".into();
                }
                let _ = port;
                command
                    .args(&options)
                    .arg("-q")
                    .arg(local)
                    .arg(format!("{destination}:{}", remote.display()));
                command
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.finish(command, &what, timeout).map(|_| ())
    }

    /// Closes the master connection (best effort; the socket dir goes with the last clone).
    pub fn close(&self) {
        if let Reach::Ssh { destination, .. } = &self.reach {
            let _ = Command::new("ssh")
                .args(&self.ssh_options)
                .args(["-O", "exit"])
                .arg(destination)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// An error about this host.
    pub fn error(
        &self,
        what: &str,
        detail: impl Into<String>,
        ssh_failed: bool,
    ) -> HostCommandError {
        HostCommandError {
            host: self.name.clone(),
            reached_by: self.reached_by(),
            what: what.to_string(),
            detail: detail.into(),
            ssh_failed,
        }
    }

    fn finish(
        &self,
        mut command: Command,
        what: &str,
        timeout: Duration,
    ) -> Result<String, HostCommandError> {
        let mut child = command.spawn().map_err(|e| {
            self.error(
                what,
                format!("cannot start {:?}: {e}", command.get_program()),
                true,
            )
        })?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(self.error(what, format!("no answer within {timeout:?}"), true));
                }
                Ok(None) => thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(self.error(what, e.to_string(), false)),
            }
        };
        let stdout = String::from_utf8_lossy(&stdout.join().unwrap_or_default()).into_owned();
        let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
        if status.success() {
            Ok(stdout)
        } else {
            Err(self.error(
                what,
                format!("{status}: {}", last_line(&stderr)),
                is_ssh_failure(&self.reach, &status),
            ))
        }
    }
}

/// The last non-empty line of a process's output, or `(no output)`.
pub fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("(no output)")
        .trim()
        .to_string()
}

/// Reads a child's pipe to the end on a helper thread, so the child never blocks on it.
pub fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        let words: Vec<String> = ["plain", "with space", "it's", "", "$HOME", "a\"b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let script = format!("printf '%s\\n' {}", shell_words(&words));
        let out = Host::local("here")
            .run(&script, "echo", Duration::from_secs(10))
            .unwrap();
        assert_eq!(out, "plain\nwith space\nit's\n\n$HOME\na\"b\n");
    }

    #[test]
    fn a_failing_command_names_the_host_and_the_reason() {
        let error = Host::local("srv")
            .run("echo nope >&2; exit 3", "checking", Duration::from_secs(10))
            .unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("host srv (local): checking: "), "{text}");
        assert!(text.ends_with("nope"), "{text}");
        assert!(!error.ssh_failed);
    }

    #[test]
    fn ssh_options_carry_the_master_and_the_batch_mode() {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let host = Host::ssh(
            "c1",
            Reach::Ssh {
                destination: "root@198.18.0.2".into(),
                port: Some(2222),
                identity: Some("/k".into()),
            },
            dir,
            Some(Path::new("/cfg")),
            Duration::from_secs(3),
        );
        let command = host.shell("true");
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let line = args.join(" ");
        for expected in [
            "-F /cfg",
            "BatchMode=yes",
            "ControlMaster=auto",
            "ControlPersist=",
            "ConnectTimeout=3",
            "-p 2222",
            "-i /k",
            "root@198.18.0.2 -- sh -c true",
        ] {
            assert!(line.contains(expected), "{expected} not in {line}");
        }
        assert_eq!(host.reached_by(), "ssh root@198.18.0.2 -p 2222");
    }
}
