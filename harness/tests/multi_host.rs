//! End to end, over a real network stack on one machine: a multi-host sweep with one server host
//! and two client hosts, each a network namespace running Debian's `sshd` (throwaway host keys
//! and client key, on a non-default port), joined by veth pairs to a bridge, addresses from the
//! benchmarking range 198.18.0.0/15 (RFC 2544). The harness reaches them with the system's
//! `ssh`, exactly as it would reach other machines.
//!
//! Checks: the merged request count equals the sum of the hosts'; the merged percentiles equal
//! those of one histogram built from every host's samples; the RTT the report shows agrees with
//! `ping` across the namespaces; a host whose sshd dies mid-sweep gives a clear error naming it
//! and the finished points are kept; an unreachable host is refused before anything runs. Where
//! `tc ... netem` works, a 1 ms delay each way must raise the merged p50 and the reported RTT by
//! about 2 ms; where it does not (this machine's kernel lacks CONFIG_NET_SCH_NETEM) the test
//! says that this part did not run and why.
//!
//! Needs root and `ip netns` (it FAILS, saying so, without them), `/usr/sbin/sshd` and `ping`
//! (`scripts/setup-test-deps.sh`). Everything it creates carries the prefix `gevmh<pid>`; a guard
//! removes namespaces, links and sshds on exit, also on failure, and leftovers of earlier runs
//! whose process is gone are removed first.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use gev_loadgen::record::{new_histogram, percentiles};
use gev_reports::hdr::decode_base64;
use gev_reports::results::Results;

/// Prefix of every namespace and link this test creates.
const PREFIX: &str = "gevmh";
/// sshd's port in every namespace (not 22, so no system sshd is confused with ours).
const SSH_PORT: u16 = 2222;
/// Hosts: 0 is the server host, 1 and 2 the client hosts.
const HOSTS: usize = 3;
/// A sweep's time limit: start-up checks, a few 1 s points and rendering on a loaded machine.
const SWEEP_LIMIT: Duration = Duration::from_secs(180);

/// Runs a command, returning stdout; panics with its stderr when it fails.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command, ignoring failure (cleanup).
fn try_run(program: &str, args: &[&str]) {
    let _ = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Fails the test unless it can build namespaces and run sshd.
fn require_the_tools() {
    // SAFETY: geteuid has no preconditions and touches no memory.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "multi_host needs root to create network namespaces (CI runs as root); run the test as root"
    );
    let netns = Command::new("ip").args(["netns", "list"]).output();
    assert!(
        netns.as_ref().is_ok_and(|o| o.status.success()),
        "multi_host needs `ip netns` (iproute2) to create network namespaces: {netns:?}"
    );
    for (path, package) in [
        ("/usr/sbin/sshd", "openssh-server"),
        ("/usr/bin/ping", "iputils-ping"),
    ] {
        assert!(
            Path::new(path).is_file(),
            "{path} is missing: run scripts/setup-test-deps.sh (installs Debian's {package})"
        );
    }
}

/// Whether the process that made a `gevmh<pid>...` name is gone.
fn leftover(name: &str) -> bool {
    let digits: String = name[PREFIX.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse::<u32>()
        .is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}

/// Kills every process in namespace `ns`.
fn kill_namespace_processes(ns: &str) {
    if let Ok(output) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                // SAFETY: kill(2) with a pid read from the namespace; touches no memory.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// Removes namespaces and links of earlier runs of this test whose process is gone.
fn remove_leftovers() {
    for line in run("ip", &["netns", "list"]).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if name.starts_with(PREFIX) && leftover(name) {
            kill_namespace_processes(name);
            try_run("ip", &["netns", "del", name]);
        }
    }
    for line in run("ip", &["-o", "link", "show"]).lines() {
        let name = line
            .split(':')
            .nth(1)
            .map(|n| n.trim().split('@').next().unwrap_or(""))
            .unwrap_or("");
        if name.starts_with(PREFIX) && leftover(name) {
            try_run("ip", &["link", "del", name]);
        }
    }
}

/// The namespaces, bridge, keys and sshds of one test run; removed on drop.
struct Lab {
    tag: String,
    subnet: u32,
    dir: tempfile::TempDir,
    sshds: Vec<Option<Child>>,
    made_namespaces: Vec<String>,
    made_links: Vec<String>,
}

impl Lab {
    fn new() -> Lab {
        require_the_tools();
        remove_leftovers();
        let pid = std::process::id();
        let mut lab = Lab {
            tag: format!("{PREFIX}{pid}"),
            subnet: 1 + pid % 250,
            dir: tempfile::Builder::new()
                .prefix("gev-multi-host-")
                .tempdir()
                .expect("temp dir"),
            sshds: Vec::new(),
            made_namespaces: Vec::new(),
            made_links: Vec::new(),
        };
        lab.build_network();
        lab.start_sshds();
        lab
    }

    fn ns(&self, host: usize) -> String {
        format!("{}-h{host}", self.tag)
    }

    fn addr(&self, host: usize) -> String {
        format!("198.18.{}.{}", self.subnet, host + 1)
    }

    fn build_network(&mut self) {
        let bridge = format!("{}b", self.tag);
        run("ip", &["link", "add", &bridge, "type", "bridge"]);
        self.made_links.push(bridge.clone());
        let bridge_addr = format!("198.18.{}.254/24", self.subnet);
        run("ip", &["addr", "add", &bridge_addr, "dev", &bridge]);
        run("ip", &["link", "set", &bridge, "up"]);
        for host in 0..HOSTS {
            let ns = self.ns(host);
            run("ip", &["netns", "add", &ns]);
            self.made_namespaces.push(ns.clone());
            let outside = format!("{}v{host}", self.tag);
            let inside = format!("{}p{host}", self.tag);
            run(
                "ip",
                &[
                    "link", "add", &outside, "type", "veth", "peer", "name", &inside,
                ],
            );
            self.made_links.push(outside.clone());
            run("ip", &["link", "set", &inside, "netns", &ns]);
            run("ip", &["-n", &ns, "link", "set", &inside, "name", "eth0"]);
            let addr = format!("{}/24", self.addr(host));
            run("ip", &["-n", &ns, "addr", "add", &addr, "dev", "eth0"]);
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
            run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
            run("ip", &["link", "set", &outside, "master", &bridge]);
            run("ip", &["link", "set", &outside, "up"]);
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn keygen(&self, name: &str) {
        let path = self.path(name).display().to_string();
        run(
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", &path],
        );
    }

    fn start_sshds(&mut self) {
        // Debian's sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        self.keygen("client_key");
        std::fs::copy(self.path("client_key.pub"), self.path("authorized_keys"))
            .expect("authorized_keys");
        let mut known_hosts = String::new();
        for host in 0..HOSTS {
            let key = format!("host_key_{host}");
            self.keygen(&key);
            let public =
                std::fs::read_to_string(self.path(&format!("{key}.pub"))).expect("host key");
            let mut words = public.split_whitespace();
            let (kind, base64) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            known_hosts.push_str(&format!(
                "[{}]:{SSH_PORT} {kind} {base64}\n",
                self.addr(host)
            ));
            let config = format!(
                "Port {SSH_PORT}\nListenAddress {}\nHostKey {}\nPidFile {}\n\
                 AuthorizedKeysFile {}\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nUseDNS no\n\
                 PermitRootLogin prohibit-password\nLogLevel ERROR\n\
                 Subsystem sftp internal-sftp\n",
                self.addr(host),
                self.path(&key).display(),
                self.path(&format!("sshd_{host}.pid")).display(),
                self.path("authorized_keys").display(),
            );
            let config_path = self.path(&format!("sshd_config_{host}"));
            std::fs::write(&config_path, config).expect("sshd config");
            let log = std::fs::File::create(self.path(&format!("sshd_{host}.log"))).expect("log");
            let child = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.ns(host),
                    "/usr/sbin/sshd",
                    "-D",
                    "-e",
                    "-f",
                ])
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start sshd");
            self.sshds.push(Some(child));
        }
        std::fs::write(self.path("known_hosts"), known_hosts).expect("known_hosts");
        let ssh_config = format!(
            "Host *\n  User root\n  Port {SSH_PORT}\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  \
             LogLevel ERROR\n",
            self.path("client_key").display(),
            self.path("known_hosts").display()
        );
        std::fs::write(self.path("ssh_config"), ssh_config).expect("ssh config");
        for host in 0..HOSTS {
            let addr: SocketAddr = format!("{}:{SSH_PORT}", self.addr(host))
                .parse()
                .expect("addr");
            let started = Instant::now();
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                let log = std::fs::read_to_string(self.path(&format!("sshd_{host}.log")));
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "sshd in {} does not listen on {addr}: {log:?}",
                    self.ns(host)
                );
                thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Kills every sshd process in the namespace of `host` (the daemon and its sessions).
    fn kill_sshd(&mut self, host: usize) {
        if let Some(mut child) = self.sshds[host].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let pids = run("ip", &["netns", "pids", &self.ns(host)]);
        for pid in pids.split_whitespace() {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "sshd" {
                if let Ok(pid) = pid.parse::<i32>() {
                    // SAFETY: kill(2) on an sshd of our namespace; touches no memory.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
    }

    /// The hosts file; `unreachable_client` replaces client 2's address by one nobody has.
    fn hosts_file(&self, name: &str, unreachable_client: bool) -> PathBuf {
        let client2 = if unreachable_client {
            format!("198.18.{}.9", self.subnet)
        } else {
            self.addr(2)
        };
        let text = format!(
            r#"[hosts]
ssh_config = "{config}"
copy_binaries = true
max_clock_offset = "50ms"
connect_timeout = "3s"
# Other engineers' builds load this machine: give ssh and loadgen time to start.
start_lead = "3s"

[hosts.server]
name = "srv"
ssh = "{server}"
cpus = "0"

[[hosts.client]]
name = "c1"
ssh = "{client1}"
bin_dir = "{bin}"
cpus = "1"

[[hosts.client]]
name = "c2"
ssh = "{client2}"
cpus = "1"
"#,
            config = self.path("ssh_config").display(),
            server = self.addr(0),
            client1 = self.addr(1),
            bin = self.path("c1-bin").display(),
        );
        let path = self.path(name);
        std::fs::write(&path, text).expect("hosts file");
        path
    }

    /// A copy of hosts file `base` with `from` replaced by `to`.
    fn hosts_variant(&self, base: &Path, name: &str, from: &str, to: &str) -> PathBuf {
        let text = std::fs::read_to_string(base).expect("hosts file");
        assert!(text.contains(from), "{from:?} not in the hosts file");
        let path = self.path(name);
        std::fs::write(&path, text.replace(from, to)).expect("hosts variant");
        path
    }

    /// `ping` from client `host` to the server: (min, median) in microseconds.
    fn ping(&self, host: usize) -> (f64, f64) {
        let out = run(
            "ip",
            &[
                "netns",
                "exec",
                &self.ns(host),
                "ping",
                "-n",
                "-c",
                "20",
                "-i",
                "0.02",
                &self.addr(0),
            ],
        );
        let mut times: Vec<f64> = out
            .lines()
            .filter_map(|line| line.split("time=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .map(|ms| ms * 1e3)
            .collect();
        assert!(!times.is_empty(), "no ping replies in {out}");
        times.sort_by(f64::total_cmp);
        let n = times.len();
        let median = if n % 2 == 0 {
            (times[n / 2 - 1] + times[n / 2]) / 2.0
        } else {
            times[n / 2]
        };
        (times[0], median)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in self.sshds.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.made_namespaces {
            kill_namespace_processes(ns);
            try_run("ip", &["netns", "del", ns]);
        }
        for link in &self.made_links {
            try_run("ip", &["link", "del", link]);
        }
    }
}

fn write_spec(dir: &Path, name: &str, rates: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "servers = [\"gev-echo\"]\nloops = [1]\nconnections = [4]\npayload_sizes = [32]\n\
             {rates}\nduration = \"1s\"\nwarmup = \"200ms\"\nrepeats = 1\n"
        ),
    )
    .expect("spec");
    path
}

/// Runs a sweep with the hosts file; returns what it printed and its results.
fn sweep(lab: &Lab, spec: &Path, hosts: &Path, out: &str) -> (common::Finished, PathBuf) {
    let out = lab.path(out);
    let finished = common::harness(
        &[
            "sweep",
            &spec.display().to_string(),
            "--hosts",
            &hosts.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
        lab.dir.path(),
        SWEEP_LIMIT,
    );
    (finished, out)
}

fn read_results(out: &Path) -> Results {
    common::read_results(&common::only_subdir(out))
}

/// Every check of a healthy sweep; returns the merged p50 of the closed-loop point (µs) and
/// client c1's reported RTT median (µs).
fn check_healthy_sweep(lab: &Lab, results: &Results, report_dir: &Path) -> (f64, f64) {
    let hosts = results
        .hosts
        .as_ref()
        .expect("results.json records the hosts");
    assert_eq!(hosts.server.name, "srv");
    assert_eq!(hosts.server.address, lab.addr(0));
    assert_eq!(hosts.clients.len(), 2);
    assert!(
        hosts.clients[0].binaries.contains("copied"),
        "{:?}",
        hosts.clients[0].binaries
    );
    assert!(
        hosts.clients[1].binaries.contains("matched"),
        "{:?}",
        hosts.clients[1].binaries
    );
    assert!(hosts.server.cores >= 1 && hosts.server.kernel != "unknown");
    assert_eq!(results.runs.len(), 2, "failures: {:?}", results.failures);
    for run in &results.runs {
        assert_eq!(run.hosts.len(), 2, "each run has both client hosts");
        assert_eq!(
            run.addr,
            format!(
                "{}:{}",
                lab.addr(0),
                run.addr.rsplit(':').next().unwrap_or("")
            )
        );
        // The load was split exactly.
        let connections: u64 = run.hosts.iter().map(|h| h.connections).sum();
        assert_eq!(connections, run.point.connections);
        if let Some(rate) = run.point.rate {
            let offered: f64 = run.hosts.iter().filter_map(|h| h.rate).sum();
            assert!((offered - rate).abs() < 1e-9, "{offered} != {rate}");
        }
        // Counts add up.
        let completed: u64 = run.hosts.iter().map(|h| h.summary.requests.completed).sum();
        assert_eq!(run.summary.requests.completed, completed);
        assert!(completed > 0);
        let sent: u64 = run.hosts.iter().map(|h| h.summary.requests.sent).sum();
        assert_eq!(run.summary.requests.sent, sent);
        // Merged percentiles = those of one histogram holding every host's samples.
        for (name, merged) in [
            ("latency", run.summary.latency_us),
            ("latency_uncorrected", run.summary.latency_uncorrected_us),
            ("connect", run.summary.connect_us),
        ] {
            let mut all = new_histogram();
            for host in &run.hosts {
                let histogram =
                    decode_base64(&host.summary.histograms[name]).expect("host histogram decodes");
                for value in histogram.iter_recorded() {
                    all.record_n(value.value_iterated_to(), value.count_at_value())
                        .expect("record");
                }
            }
            let single = percentiles(&all);
            // Percentiles, max and count exactly; the mean (not a percentile) up to the order
            // in which floating-point sums were taken.
            let exact = |p: gev_loadgen::Percentiles| (p.p50, p.p90, p.p99, p.p999, p.max, p.count);
            assert_eq!(exact(merged), exact(single), "{name} of {}", run.point);
            assert!((merged.mean - single.mean).abs() <= 1e-9 * single.mean.abs().max(1.0));
            assert_eq!(merged.count, all.len());
        }
        // Both hosts started together: their windows began within the clock bound plus a
        // scheduling allowance.
        let starts: Vec<i128> = run
            .hosts
            .iter()
            .map(|h| {
                i128::from(
                    h.summary
                        .window_start_unix_ns
                        .expect("loadgen wrote its start"),
                ) - (h.clock_offset_us * 1e3) as i128
            })
            .collect();
        let spread_ms = (starts[0] - starts[1]).unsigned_abs() as f64 / 1e6;
        assert!(
            spread_ms < 250.0,
            "client windows began {spread_ms} ms apart"
        );
        assert!(
            run.server_cpu_secs.is_some_and(|cpu| cpu > 0.0),
            "server CPU read over ssh"
        );
        assert!(run.server_exit.is_clean(), "{:?}", run.server_exit);
    }

    // The RTT shown agrees with ping across the namespaces (measured here, outside the
    // harness): within 0.3 ms for median and minimum, on a loaded machine.
    let shown = hosts.clients[0].rtt.expect("client c1 has a path RTT");
    let connect = hosts.clients[0]
        .tcp_connect
        .expect("client c1 has a TCP connect time");
    let (ping_min, ping_median) = lab.ping(1);
    println!(
        "RTT c1 -> srv: report says ping median {:.1} µs, min {:.1} µs ({} replies), TCP \
         connect median {:.1} µs, min {:.1} µs ({} connects); ping across the namespaces here: \
         median {ping_median:.1} µs, min {ping_min:.1} µs",
        shown.median_us,
        shown.min_us,
        shown.samples,
        connect.median_us,
        connect.min_us,
        connect.samples
    );
    assert_eq!(shown.samples, 20);
    assert_eq!(connect.samples, 32);
    assert!(
        (shown.median_us - ping_median).abs() < 300.0 && (shown.min_us - ping_min).abs() < 300.0,
        "reported RTT {shown:?} disagrees with ping across the namespaces (median {ping_median} \
         µs, min {ping_min} µs)"
    );
    // TCP connect adds the generator's scheduling to the path: its minimum is within a
    // millisecond of ping's on this loaded machine.
    assert!(
        connect.min_us > 0.0 && (connect.min_us - ping_min).abs() < 1000.0,
        "TCP connect {connect:?} disagrees with ping (min {ping_min} µs)"
    );

    // The report shows the hosts and the RTT.
    let report = std::fs::read_to_string(report_dir.join("report.md")).expect("report.md");
    for expected in [
        "client host c1",
        "client host c2",
        "server host srv",
        "path RTT",
        "max clock offset",
    ] {
        assert!(report.contains(expected), "report.md lacks {expected:?}");
    }
    let env = std::fs::read_to_string(report_dir.join("env.txt")).expect("env.txt");
    assert!(
        env.contains("server host srv") && env.contains("host checks"),
        "{env}"
    );
    let closed = results
        .runs
        .iter()
        .find(|r| r.point.rate.is_none())
        .expect("a closed-loop run");
    (closed.summary.latency_us.p50, shown.median_us)
}

/// Adds `delay` to every namespace's eth0 with netem; the error when the kernel cannot.
fn add_netem(lab: &Lab) -> Result<(), String> {
    for host in 0..HOSTS {
        let output = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.ns(host),
                "tc",
                "qdisc",
                "add",
                "dev",
                "eth0",
                "root",
                "netem",
                "delay",
                "1ms",
            ])
            .output()
            .map_err(|e| format!("cannot run tc: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "`tc qdisc add dev eth0 root netem delay 1ms` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// Runs the harness in the background, kills client c2's sshd once the first run has finished,
/// and returns what the harness printed.
fn sweep_losing_a_host(
    lab: &mut Lab,
    spec: &Path,
    hosts: &Path,
    out: &Path,
) -> (i32, String, String) {
    let mut child = Command::new(common::binary("harness"))
        .args([
            "sweep",
            &spec.display().to_string(),
            "--hosts",
            &hosts.display().to_string(),
        ])
        .args(["--out", &out.display().to_string(), "--no-render"])
        .current_dir(lab.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start harness");
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut guard = Kill(child);
    let (sender, lines) = mpsc::channel::<String>();
    let stderr_reader = thread::spawn(move || {
        let mut all = String::new();
        if let Some(stderr) = stderr {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                all.push_str(&line);
                all.push('\n');
                let _ = sender.send(line);
            }
        }
        all
    });
    let stdout_reader = thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut stdout) = stdout {
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        }
        text
    });
    let started = Instant::now();
    loop {
        let line = lines
            .recv_timeout(SWEEP_LIMIT.saturating_sub(started.elapsed()))
            .expect("the harness reports its first run within the limit");
        if line.contains("run 1/3:") {
            assert!(!line.contains("FAILED"), "the first run failed: {line}");
            break;
        }
    }
    lab.kill_sshd(2);
    let status = loop {
        if let Some(status) = guard.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < SWEEP_LIMIT,
            "the harness ran longer than {SWEEP_LIMIT:?}"
        );
        thread::sleep(Duration::from_millis(50));
    };
    let stderr = stderr_reader.join().unwrap_or_default();
    let stdout = stdout_reader.join().unwrap_or_default();
    (status.code().unwrap_or(-1), stdout, stderr)
}

#[test]
fn a_sweep_across_three_namespaced_hosts() {
    let mut lab = Lab::new();
    let hosts = lab.hosts_file("hosts.toml", false);
    let spec = write_spec(
        lab.dir.path(),
        "spec.toml",
        "closed_loop = true\nrates = [2000]",
    );

    // 1. A healthy sweep: one server host, two client hosts.
    let started = Instant::now();
    let (finished, out) = sweep(&lab, &spec, &hosts, "out");
    println!(
        "sweep took {:.1} s\n{}",
        started.elapsed().as_secs_f64(),
        finished.stdout
    );
    common::assert_succeeded(&finished, "multi-host sweep");
    let results = read_results(&out);
    let report_dir = common::only_subdir(&out);
    let (p50, rtt) = check_healthy_sweep(&lab, &results, &report_dir);
    let record = results.hosts.as_ref().expect("hosts");
    println!(
        "host checks {:.3} s, clock offsets {:.3} s, RTT {:.3} s; offsets c1 {:+.1} µs, c2 \
         {:+.1} µs (bound {:.0} µs)",
        record.check_secs,
        record.clock_secs,
        record.rtt_secs,
        record.clients[0].clock_offset_us,
        record.clients[1].clock_offset_us,
        record.max_clock_offset_us
    );
    println!(
        "report.md:\n{}",
        std::fs::read_to_string(report_dir.join("report.md")).unwrap_or_default()
    );

    // 2. Latency added with netem, where the kernel has it.
    match add_netem(&lab) {
        Ok(()) => {
            let (finished, out) = sweep(&lab, &spec, &hosts, "out-netem");
            assert!(
                finished.status.success(),
                "{}\n{}",
                finished.stdout,
                finished.stderr
            );
            let delayed = read_results(&out);
            let (delayed_p50, delayed_rtt) =
                check_healthy_sweep(&lab, &delayed, &common::only_subdir(&out));
            println!(
                "netem 1 ms each way: p50 {p50:.0} -> {delayed_p50:.0} µs, RTT {rtt:.0} -> \
                 {delayed_rtt:.0} µs"
            );
            assert!(
                (delayed_p50 - p50 - 2000.0).abs() < 700.0,
                "merged p50 rose by {} µs, not about 2 ms",
                delayed_p50 - p50
            );
            assert!(
                (delayed_rtt - rtt - 2000.0).abs() < 700.0,
                "reported RTT rose by {} µs, not about 2 ms",
                delayed_rtt - rtt
            );
        }
        Err(why) => println!(
            "netem part did NOT run: {why} (this kernel lacks CONFIG_NET_SCH_NETEM, so no latency \
             can be added with tc here)"
        ),
    }

    // 3. An unreachable client host is refused before anything runs, in one line naming it.
    let unreachable = lab.hosts_file("hosts-unreachable.toml", true);
    let (finished, out) = sweep(&lab, &spec, &unreachable, "out-unreachable");
    assert_eq!(
        finished.status.code(),
        Some(2),
        "{}\n{}",
        finished.stdout,
        finished.stderr
    );
    let message = finished.stderr.trim();
    println!("unreachable host: {message}");
    assert!(
        message.starts_with("harness sweep: error: host c2 (ssh 198.18.")
            && !message.contains('\n'),
        "{message}"
    );
    assert!(!out.exists() || std::fs::read_dir(&out).map_or(0, |d| d.count()) == 0);

    // 4. A binary that is not there (and may not be copied), and a clock bound no host meets,
    // are refused before anything runs, in one line naming the host.
    let no_copy = lab.hosts_variant(
        &hosts,
        "hosts-no-copy.toml",
        "bin_dir = \"",
        "bin_dir = \"/nonexistent",
    );
    let no_copy = lab.hosts_variant(
        &no_copy,
        "hosts-no-copy.toml",
        "copy_binaries = true",
        "copy_binaries = false",
    );
    let (finished, _) = sweep(&lab, &spec, &no_copy, "out-no-copy");
    let message = finished.stderr.trim();
    println!("missing binary: {message}");
    assert_eq!(finished.status.code(), Some(2), "{message}");
    assert!(
        message.contains("host c1 (ssh ")
            && message.contains("loadgen is missing")
            && !message.contains('\n'),
        "{message}"
    );
    let strict = lab.hosts_variant(
        &hosts,
        "hosts-strict.toml",
        "max_clock_offset = \"50ms\"",
        "max_clock_offset = \"1ns\"",
    );
    let (finished, _) = sweep(&lab, &spec, &strict, "out-strict");
    let message = finished.stderr.trim();
    println!("clock bound: {message}");
    assert_eq!(finished.status.code(), Some(2), "{message}");
    assert!(
        message.contains("off this machine's")
            && message.contains("beyond max_clock_offset 0.000001 ms")
            && !message.contains('\n'),
        "{message}"
    );

    // 5. A client host lost mid-sweep: a clear error naming it; the finished run is kept.
    let spec3 = write_spec(
        lab.dir.path(),
        "spec3.toml",
        "closed_loop = false\nrates = [1000, 1500, 2000]",
    );
    let out = lab.path("out-lost");
    let (code, stdout, stderr) = sweep_losing_a_host(&mut lab, &spec3, &hosts, &out);
    println!("lost host: exit {code}\n{stdout}");
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("FAILED:") && l.contains("host c2 (ssh ")),
        "no FAILED line naming c2:\n{stdout}\n{stderr}"
    );
    let lost = read_results(&out);
    assert!(!lost.runs.is_empty(), "the finished run was not kept");
    assert!(lost.runs.iter().all(|r| r.hosts.len() == 2));
    assert!(
        lost.failures.iter().any(|f| f.error.contains("host c2")),
        "{:?}",
        lost.failures
    );
    assert!(
        lost.notes
            .iter()
            .any(|n| n.contains("the sweep stopped after")),
        "{:?}",
        lost.notes
    );
    assert!(lost.runs.len() + lost.failures.len() < 3 || lost.failures.len() == 1);
}
