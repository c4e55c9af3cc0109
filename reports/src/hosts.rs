//! The hosts of a multi-host sweep as report rows: where the server and each load generator ran,
//! their clocks, the path RTT measured before the sweep, and each run's requests by client host.
//!
//! Where it sits: `results.json` (`Results::hosts`, `RunRecord::hosts`) -> **these rows** -> the
//! environment table of report.md and index.html (`from_results`). Nothing is shown for a sweep
//! that ran on one machine.

use crate::results::{HostRecord, PathRtt, Results};

/// Runs whose per-host request counts are listed; a bigger sweep lists the first ones.
pub const MAX_RUNS_LISTED: usize = 20;

/// `(key, value)` rows describing the hosts; empty without hosts.
pub fn environment_rows(results: &Results) -> Vec<(String, String)> {
    let Some(hosts) = &results.hosts else {
        return Vec::new();
    };
    let mut rows = vec![(
        format!("server host {}", hosts.server.name),
        describe(&hosts.server),
    )];
    for client in &hosts.clients {
        rows.push((
            format!("client host {} (weight {})", client.name, client.weight),
            describe(client),
        ));
    }
    for client in &hosts.clients {
        let shown = |rtt: &PathRtt| {
            format!(
                "median {:.1} µs, min {:.1} µs ({} samples)",
                rtt.median_us, rtt.min_us, rtt.samples
            )
        };
        let ping = client.rtt.as_ref().map_or("not measured".into(), shown);
        let connect = client
            .tcp_connect
            .as_ref()
            .map_or("not measured".into(), shown);
        rows.push((
            format!("path RTT {} -> {}", client.name, hosts.server.name),
            format!("ping {ping}; TCP connect {connect}"),
        ));
    }
    rows.push(("path RTT method".into(), hosts.rtt_method.clone()));
    rows.push((
        "max clock offset".into(),
        format!(
            "{:.1} µs: a sweep is refused where a host's |offset| + rtt/2 exceeds it",
            hosts.max_clock_offset_us
        ),
    ));
    rows.push((
        "host checks".into(),
        format!(
            "reachability, environment and binaries {:.2} s, clock offsets {:.2} s, path RTT \
             {:.2} s",
            hosts.check_secs, hosts.clock_secs, hosts.rtt_secs
        ),
    ));
    for (index, run) in results
        .runs
        .iter()
        .filter(|run| !run.hosts.is_empty())
        .enumerate()
        .take(MAX_RUNS_LISTED)
    {
        let parts: Vec<String> = run
            .hosts
            .iter()
            .map(|host| {
                format!(
                    "{} {} req ({} conns, p99 {:.0} µs)",
                    host.host,
                    host.summary.requests.completed,
                    host.connections,
                    host.summary.latency_us.p99
                )
            })
            .collect();
        rows.push((
            format!("run {} by host", index + 1),
            format!(
                "{} {} #{}: {} = {} req merged (p99 {:.0} µs from the merged histogram)",
                run.server,
                run.point,
                run.repeat,
                parts.join(" + "),
                run.summary.requests.completed,
                run.summary.latency_us.p99
            ),
        ));
    }
    rows
}

fn describe(host: &HostRecord) -> String {
    let mut text = format!(
        "{} at {} · {} · {} cores · kernel {} · clock {:+.1} µs (±{:.1}) · binaries: {}",
        host.reached_by,
        host.address,
        host.cpu,
        host.cores,
        host.kernel,
        host.clock_offset_us,
        host.clock_rtt_us / 2.0,
        host.binaries
    );
    if let Some(cpus) = &host.cpus {
        text.push_str(&format!(" · pinned to cpus {cpus}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::HostsRecord;

    fn host(name: &str) -> HostRecord {
        HostRecord {
            name: name.into(),
            reached_by: format!("ssh {name}"),
            address: "198.18.0.1".into(),
            cpu: "cpu".into(),
            cores: 2,
            kernel: "6.1".into(),
            cpus: Some("0".into()),
            weight: 1,
            clock_offset_us: 12.0,
            clock_rtt_us: 300.0,
            binaries: "sha256 matched the local build".into(),
            rtt: Some(PathRtt {
                median_us: 80.0,
                min_us: 50.0,
                samples: 20,
            }),
            tcp_connect: None,
        }
    }

    #[test]
    fn rows_name_every_host_and_the_rtt() {
        let text = r#"{"schema":"gev-harness/1","created":"c",
            "environment":{"cpu":"x","cores":2,"kernel":"6","rustc":"r","git_commit":null},
            "spec":{"servers":[],"loops":[1],"connections":[8],"payload_sizes":[64],
              "framings":["raw"],"rates":[null],"pipeline":1,"duration_secs":1.0,
              "warmup_secs":0.5,"repeats":1},"runs":[],"summaries":[]}"#;
        let mut results = Results::from_json(text).unwrap();
        assert!(environment_rows(&results).is_empty());
        results.hosts = Some(HostsRecord {
            server: host("srv"),
            clients: vec![host("c1"), host("c2")],
            max_clock_offset_us: 5000.0,
            rtt_method: "TCP connect".into(),
            check_secs: 0.5,
            clock_secs: 0.1,
            rtt_secs: 0.2,
        });
        let rows = environment_rows(&results);
        let keys: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"server host srv"));
        assert!(keys.contains(&"client host c2 (weight 1)"));
        assert!(keys.contains(&"path RTT c1 -> srv"));
        let rtt = &rows
            .iter()
            .find(|(k, _)| k == "path RTT c1 -> srv")
            .unwrap()
            .1;
        assert_eq!(
            rtt,
            "ping median 80.0 µs, min 50.0 µs (20 samples); TCP connect not measured"
        );
    }
}
