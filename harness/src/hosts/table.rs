//! The `[hosts]` table of a sweep spec (or the file given with `harness sweep --hosts FILE`):
//! which host runs the server and which hosts run the load generators, and how each is reached.
//!
//! Where it sits: sweep spec (`spec.rs`) -> **hosts table** -> host checks and runs
//! (`hosts::session`). Without the table everything runs on this machine, as before. Like the
//! rest of the spec, unknown keys are errors and every rejection is one line naming the key.
//!
//! ```toml
//! [hosts]
//! max_clock_offset = "5ms"      # refuse a sweep where a host's clock is further off (default 5ms)
//! copy_binaries = false         # scp loadgen/the server there when they differ (default false)
//! ssh_config = "~/.ssh/config"  # passed as ssh -F (default: ssh's own lookup)
//! connect_timeout = "5s"        # ssh ConnectTimeout (default 5s)
//! start_lead = "1s"             # clients start this long after the harness picks the instant:
//!                               # raise it where ssh and loadgen start slowly (default 1s)
//!
//! [hosts.server]
//! name = "srv"
//! ssh = "bench@10.0.0.1"        # ssh destination; omit (or "local") for this machine
//! port = 22                     # default: from the ssh config
//! identity = "~/.ssh/id_ed25519"
//! address = "10.0.0.1"          # where clients reach the server (it binds there); default: the
//!                               # destination's host part (127.0.0.1 for local)
//! bin_dir = "/opt/gev/bin"      # where the workspace binaries are there (default: same path)
//! cpus = "0-3"                  # taskset -c for the server there (default: not pinned)
//!
//! [[hosts.client]]              # one or more
//! name = "gen1"
//! ssh = "bench@10.0.0.2"
//! weight = 1                    # share of connections and rate (default 1)
//! cpus = "0-1"                  # taskset -c for loadgen there
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::ssh::Reach;

/// Default bound on a host's clock offset.
pub const DEFAULT_MAX_CLOCK_OFFSET: &str = "5ms";
/// Default ssh ConnectTimeout.
pub const DEFAULT_CONNECT_TIMEOUT: &str = "5s";
/// Default time between choosing the clients' common start instant and the instant.
pub const DEFAULT_START_LEAD: &str = "1s";

/// The `[hosts]` table as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostsFile {
    pub server: HostEntry,
    #[serde(default)]
    pub client: Vec<HostEntry>,
    pub max_clock_offset: Option<String>,
    #[serde(default)]
    pub copy_binaries: bool,
    pub ssh_config: Option<PathBuf>,
    pub connect_timeout: Option<String>,
    pub start_lead: Option<String>,
}

/// One host as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    pub name: String,
    pub ssh: Option<String>,
    pub port: Option<u16>,
    pub identity: Option<PathBuf>,
    pub address: Option<String>,
    pub bin_dir: Option<PathBuf>,
    pub cpus: Option<String>,
    pub weight: Option<u64>,
}

/// A file holding only a `[hosts]` table (`harness sweep --hosts FILE`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostsOnly {
    hosts: HostsFile,
}

/// The checked hosts of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Hosts {
    pub server: HostConfig,
    pub clients: Vec<HostConfig>,
    pub max_clock_offset: Duration,
    pub copy_binaries: bool,
    pub ssh_config: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Time from choosing the common start instant to the instant (ssh and loadgen start-up).
    pub start_lead: Duration,
}

/// One checked host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    pub name: String,
    pub reach: Reach,
    /// Where clients reach it (server: also its bind address).
    pub address: String,
    /// Where the workspace binaries are on it; `None`: the local build's directory.
    pub bin_dir: Option<PathBuf>,
    pub cpus: Option<String>,
    pub weight: u64,
}

/// A hosts table that cannot be used; one line naming the key and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HostsError {
    #[error("cannot read hosts file {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: {message}")]
    Toml { path: String, message: String },
    #[error("{path}: [hosts] has no [[hosts.client]]: name at least one client host")]
    NoClients { path: String },
    #[error("{path}: host name {name:?} is used twice; give every host its own name")]
    DuplicateName { path: String, name: String },
    #[error("{path}: host {name:?}: `{key}`: {message}")]
    BadValue {
        path: String,
        name: String,
        key: &'static str,
        message: String,
    },
    #[error("{path}: [hosts] `{key}`: {message}")]
    BadSetting {
        path: String,
        key: &'static str,
        message: String,
    },
}

impl Hosts {
    /// Reads a file holding a `[hosts]` table.
    pub fn load(path: &Path) -> Result<Hosts, HostsError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| HostsError::Read {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let file: HostsOnly = toml::from_str(&text).map_err(|e| HostsError::Toml {
            path: shown.clone(),
            message: e.message().trim().replace('\n', " "),
        })?;
        Hosts::check(file.hosts, &shown)
    }

    /// Applies defaults and checks every rule; `path` names the file in errors.
    pub fn check(file: HostsFile, path: &str) -> Result<Hosts, HostsError> {
        if file.client.is_empty() {
            return Err(HostsError::NoClients { path: path.into() });
        }
        let mut names: Vec<&str> = Vec::new();
        for entry in std::iter::once(&file.server).chain(&file.client) {
            if names.contains(&entry.name.as_str()) {
                return Err(HostsError::DuplicateName {
                    path: path.into(),
                    name: entry.name.clone(),
                });
            }
            names.push(&entry.name);
        }
        let duration = |value: &Option<String>, default: &str, key: &'static str| {
            let text = value.as_deref().unwrap_or(default);
            humantime::parse_duration(text).map_err(|e| HostsError::BadSetting {
                path: path.into(),
                key,
                message: format!("{text:?} is not a duration ({e}); write e.g. \"5ms\""),
            })
        };
        Ok(Hosts {
            server: host(&file.server, path, false)?,
            clients: file
                .client
                .iter()
                .map(|entry| host(entry, path, true))
                .collect::<Result<_, _>>()?,
            max_clock_offset: duration(
                &file.max_clock_offset,
                DEFAULT_MAX_CLOCK_OFFSET,
                "max_clock_offset",
            )?,
            copy_binaries: file.copy_binaries,
            ssh_config: file.ssh_config.clone(),
            connect_timeout: duration(
                &file.connect_timeout,
                DEFAULT_CONNECT_TIMEOUT,
                "connect_timeout",
            )?,
            start_lead: duration(&file.start_lead, DEFAULT_START_LEAD, "start_lead")?,
        })
    }

    /// The client hosts' weights, in order (the segments follow them).
    pub fn weights(&self) -> Vec<u64> {
        self.clients.iter().map(|c| c.weight).collect()
    }
}

fn host(entry: &HostEntry, path: &str, client: bool) -> Result<HostConfig, HostsError> {
    let bad = |key: &'static str, message: String| HostsError::BadValue {
        path: path.into(),
        name: entry.name.clone(),
        key,
        message,
    };
    if entry.name.is_empty()
        || !entry
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(bad(
            "name",
            "use letters, digits, `-`, `_` and `.` only".into(),
        ));
    }
    let reach = match entry.ssh.as_deref() {
        None | Some("local") => {
            if entry.port.is_some() || entry.identity.is_some() {
                return Err(bad(
                    "port",
                    "`port` and `identity` need `ssh = \"[user@]host\"`".into(),
                ));
            }
            Reach::Local
        }
        Some(destination) if destination.trim().is_empty() || destination.starts_with('-') => {
            return Err(bad(
                "ssh",
                format!("{destination:?} is not an ssh destination"),
            ))
        }
        Some(destination) => Reach::Ssh {
            destination: destination.to_string(),
            port: entry.port,
            identity: entry.identity.clone(),
        },
    };
    let address = match (&entry.address, &reach) {
        (Some(address), _) => address.clone(),
        (None, Reach::Local) => "127.0.0.1".into(),
        (None, Reach::Ssh { destination, .. }) => destination
            .rsplit_once('@')
            .map_or(destination.as_str(), |(_, host)| host)
            .to_string(),
    };
    if address.is_empty() || address.contains(char::is_whitespace) {
        return Err(bad("address", format!("{address:?} is not a host address")));
    }
    if let Some(cpus) = &entry.cpus {
        if cpus.is_empty()
            || !cpus
                .chars()
                .all(|c| c.is_ascii_digit() || c == ',' || c == '-')
        {
            return Err(bad(
                "cpus",
                format!("{cpus:?} is not a taskset list; write e.g. \"0-3\" or \"0,2\""),
            ));
        }
    }
    let weight = entry.weight.unwrap_or(1);
    if !client && entry.weight.is_some() {
        return Err(bad(
            "weight",
            "only client hosts carry a share of the load".into(),
        ));
    }
    if weight == 0 {
        return Err(bad(
            "weight",
            "a client host's weight must be at least 1".into(),
        ));
    }
    Ok(HostConfig {
        name: entry.name.clone(),
        reach,
        address,
        bin_dir: entry.bin_dir.clone(),
        cpus: entry.cpus.clone(),
        weight,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Hosts, HostsError> {
        let file: HostsOnly = toml::from_str(text).map_err(|e| HostsError::Toml {
            path: "h.toml".into(),
            message: e.message().to_string(),
        })?;
        Hosts::check(file.hosts, "h.toml")
    }

    #[test]
    fn a_full_table_is_read_with_defaults() {
        let hosts = parse(
            r#"
            [hosts]
            copy_binaries = true
            [hosts.server]
            name = "srv"
            ssh = "root@198.18.0.1"
            port = 2222
            cpus = "0"
            [[hosts.client]]
            name = "c1"
            ssh = "c1-alias"
            address = "198.18.0.2"
            [[hosts.client]]
            name = "c2"
            weight = 3
            "#,
        )
        .unwrap();
        assert_eq!(hosts.server.address, "198.18.0.1");
        assert_eq!(
            hosts.server.reach,
            Reach::Ssh {
                destination: "root@198.18.0.1".into(),
                port: Some(2222),
                identity: None
            }
        );
        assert_eq!(hosts.clients[0].address, "198.18.0.2");
        assert_eq!(hosts.clients[1].reach, Reach::Local);
        assert_eq!(hosts.weights(), vec![1, 3]);
        assert_eq!(hosts.max_clock_offset, Duration::from_millis(5));
        assert!(hosts.copy_binaries);
    }

    #[test]
    fn each_rule_is_enforced_in_one_line() {
        let server = "[hosts.server]\nname = \"srv\"\nssh = \"a@b\"\n";
        let cases = [
            (format!("[hosts]\n{server}"), "no [[hosts.client]]"),
            (
                format!("[hosts]\n{server}[[hosts.client]]\nname = \"srv\"\n"),
                "used twice",
            ),
            (
                format!("[hosts]\n{server}[[hosts.client]]\nname = \"c\"\nweight = 0\n"),
                "at least 1",
            ),
            (
                format!("[hosts]\n{server}[[hosts.client]]\nname = \"c\"\ncpus = \"all\"\n"),
                "not a taskset list",
            ),
            (
                format!("[hosts]\nmax_clock_offset = \"soon\"\n{server}[[hosts.client]]\nname = \"c\"\n"),
                "not a duration",
            ),
            (
                format!("[hosts]\n{server}[[hosts.client]]\nname = \"c\"\nport = 22\n"),
                "need `ssh",
            ),
            (
                format!("[hosts]\n{server}[[hosts.client]]\nname = \"c\"\nsssh = \"x\"\n"),
                "unknown field",
            ),
        ];
        for (text, expected) in cases {
            let message = parse(&text).unwrap_err().to_string();
            assert!(message.contains(expected), "{text:?} gave {message:?}");
            assert!(!message.contains('\n'), "{message}");
        }
    }
}
