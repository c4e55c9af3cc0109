//! Lossless merge of the client hosts' loadgen summaries into the point's one summary.
//!
//! Where it sits: one loadgen per client host (`hosts::session`) -> **merge** -> `RunRecord`
//! (`summary` = the merge, `hosts` = each host's own). HdrHistograms add exactly (same bucket
//! layout, counts summed), so every percentile of the merged run is read from the merged
//! histogram, to the histogram's precision, and is never an average of per-host percentiles.
//! Counts and byte totals are summed; rates are summed (the hosts measure the same window). Time
//! series are aligned on wall-clock seconds: each host's `window_start_unix_ns`, corrected by its
//! measured clock offset, places its intervals on one common axis; the per-second rate is the sum
//! of the hosts' and the per-second p99 is the largest of theirs (an upper bound: per-second
//! histograms are not in the summary).

use std::collections::BTreeMap;

use gev_loadgen::record::{encode_base64, percentiles};
use gev_loadgen::{Percentiles, Summary, TimePoint};
use gev_reports::hdr::decode_base64;
use hdrhistogram::Histogram;

/// The histograms a summary carries (loadgen's names) and which percentiles each yields.
pub const HISTOGRAMS: [&str; 4] = ["latency", "latency_uncorrected", "connect", "loop_lag"];

/// One host's summary and its clock offset (remote - local, ns).
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    pub host: &'a str,
    pub summary: &'a Summary,
    pub clock_offset_ns: i64,
}

/// Why summaries cannot be merged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    #[error(
        "host {host}: its summary has no `{name}` histogram, so the merge would lose its samples"
    )]
    MissingHistogram { host: String, name: String },
    #[error("host {host}: histogram `{name}`: {reason}")]
    BadHistogram {
        host: String,
        name: String,
        reason: String,
    },
}

/// Adds the histogram `name` of every part.
pub fn merged_histogram(parts: &[Part<'_>], name: &str) -> Result<Histogram<u64>, MergeError> {
    let mut total: Option<Histogram<u64>> = None;
    for part in parts {
        let text =
            part.summary
                .histograms
                .get(name)
                .ok_or_else(|| MergeError::MissingHistogram {
                    host: part.host.to_string(),
                    name: name.to_string(),
                })?;
        let bad = |reason: String| MergeError::BadHistogram {
            host: part.host.to_string(),
            name: name.to_string(),
            reason,
        };
        let histogram = decode_base64(text).map_err(bad)?;
        match total.as_mut() {
            None => total = Some(histogram),
            Some(total) => total
                .add(&histogram)
                .map_err(|e| bad(format!("cannot be added: {e:?}")))?,
        }
    }
    total.ok_or(MergeError::Empty)
}

/// The merged summary of a multi-host run.
pub fn merge(parts: &[Part<'_>]) -> Result<Summary, MergeError> {
    let first = parts.first().ok_or(MergeError::Empty)?.summary;
    let mut merged = first.clone();

    let mut histograms = BTreeMap::new();
    let mut stats: BTreeMap<&str, Percentiles> = BTreeMap::new();
    for name in HISTOGRAMS {
        // A histogram no host wrote (a UDP run has no connect or loop-lag histogram) stays
        // absent; one that only some hosts wrote is an error, as merging would lose samples.
        if parts
            .iter()
            .all(|p| !p.summary.histograms.contains_key(name))
        {
            continue;
        }
        let histogram = merged_histogram(parts, name)?;
        stats.insert(name, percentiles(&histogram));
        histograms.insert(name.to_string(), encode_base64(&histogram));
    }
    merged.histograms = histograms;
    let stat = |name: &str| stats.get(name).copied().unwrap_or_default();
    merged.latency_us = stat("latency");
    merged.latency_uncorrected_us = stat("latency_uncorrected");
    merged.connect_us = stat("connect");
    merged.loop_lag_us = stat("loop_lag");

    let sum = |pick: fn(&Summary) -> u64| parts.iter().map(|p| pick(p.summary)).sum::<u64>();
    let sum_f = |pick: fn(&Summary) -> f64| parts.iter().map(|p| pick(p.summary)).sum::<f64>();
    merged.config.connections = sum(|s| s.config.connections);
    merged.config.threads = sum(|s| s.config.threads);
    merged.config.requests = parts
        .iter()
        .map(|p| p.summary.config.requests)
        .sum::<Option<u64>>();
    merged.config.rate = parts.iter().map(|p| p.summary.config.rate).sum();
    merged.target_rate = parts.iter().map(|p| p.summary.target_rate).sum();
    merged.connections.opened = sum(|s| s.connections.opened);
    merged.connections.failed = sum(|s| s.connections.failed);
    merged.requests.sent = sum(|s| s.requests.sent);
    merged.requests.completed = sum(|s| s.requests.completed);
    let mut errors = BTreeMap::new();
    for part in parts {
        for (kind, count) in &part.summary.requests.errors {
            *errors.entry(kind.clone()).or_insert(0) += count;
        }
    }
    merged.requests.errors = errors;
    merged.throughput.rps = sum_f(|s| s.throughput.rps);
    merged.throughput.bytes_per_sec = sum_f(|s| s.throughput.bytes_per_sec);
    merged.throughput.bytes_sent = sum(|s| s.throughput.bytes_sent);
    merged.throughput.bytes_received = sum(|s| s.throughput.bytes_received);
    merged.duration_secs = parts
        .iter()
        .map(|p| p.summary.duration_secs)
        .fold(0.0, f64::max);
    merged.generator_cpu_percent = parts
        .iter()
        .flat_map(|p| p.summary.generator_cpu_percent.iter().copied())
        .collect();
    merged.warnings = parts
        .iter()
        .flat_map(|p| {
            p.summary
                .warnings
                .iter()
                .map(move |w| format!("host {}: {w}", p.host))
        })
        .collect();
    let (origin, timeseries) = align_timeseries(parts);
    merged.window_start_unix_ns = origin;
    merged.timeseries = timeseries;
    Ok(merged)
}

/// The parts' time series on one wall-clock axis: second `k` of the result covers
/// `(origin + k - 1 s, origin + k s]`, where `origin` is the earliest corrected window start.
/// Without wall-clock starts (older loadgens) the series are aligned on their own `t`.
pub fn align_timeseries(parts: &[Part<'_>]) -> (Option<u64>, Vec<TimePoint>) {
    let starts: Option<Vec<i128>> = parts
        .iter()
        .map(|p| {
            p.summary
                .window_start_unix_ns
                .map(|start| i128::from(start) - i128::from(p.clock_offset_ns))
        })
        .collect();
    let origin = starts.as_ref().and_then(|s| s.iter().copied().min());
    let mut seconds: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for (index, part) in parts.iter().enumerate() {
        let shift_ns = match (&starts, origin) {
            (Some(starts), Some(origin)) => starts[index] - origin,
            _ => 0,
        };
        for point in &part.summary.timeseries {
            let end_ns = shift_ns + (point.t * 1e9).round() as i128;
            // The wall-clock second the interval ends in, counting from 1.
            let second = ((end_ns + 999_999_999) / 1_000_000_000).max(1) as i64;
            let entry = seconds.entry(second).or_insert((0.0, 0.0));
            entry.0 += point.rps;
            entry.1 = entry.1.max(point.p99_us);
        }
    }
    let series = seconds
        .into_iter()
        .map(|(second, (rps, p99_us))| TimePoint {
            t: second as f64,
            rps,
            p99_us,
        })
        .collect();
    (origin.map(|o| o.max(0) as u64), series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gev_loadgen::record::new_histogram;

    /// A summary as loadgen writes it, with histograms holding `samples` (ns).
    pub(crate) fn summary(samples: &[u64], start_ns: Option<u64>) -> Summary {
        let mut histogram = new_histogram();
        for &value in samples {
            histogram.record(value).unwrap();
        }
        let text = r#"{"schema":"gev-loadgen/1",
            "config":{"target":"x","framing":"raw","connections":2,"threads":1,
              "duration_secs":1.0,"warmup_secs":0.0,"requests":null,"pipeline":1,"rate":500.0,
              "size_min":64,"size_max":64,"verify":false,"timeout_ms":5000,
              "connect_rate":null,"pin":false},
            "env":{"cpu_model":"c","cores":2,"kernel":"k","version":"v"},
            "connections":{"opened":2,"failed":0},
            "requests":{"sent":0,"completed":0,"errors":{"timeout":1}},
            "throughput":{"rps":0.0,"bytes_per_sec":0.0},
            "target_rate":500.0,
            "latency_us":{"p50":0,"p90":0,"p99":0,"p999":0,"max":0,"mean":0},
            "latency_uncorrected_us":{"p50":0,"p90":0,"p99":0,"p999":0,"max":0,"mean":0},
            "connect_us":{"p50":0,"p90":0,"p99":0,"p999":0,"max":0,"mean":0},
            "loop_lag_us":{"p50":0,"p90":0,"p99":0,"p999":0,"max":0,"mean":0},
            "histograms":{},"timeseries":[],"warnings":["w"],"duration_secs":1.0}"#;
        let mut summary = Summary::from_json(text).unwrap();
        for name in HISTOGRAMS {
            summary
                .histograms
                .insert(name.to_string(), encode_base64(&histogram));
        }
        summary.requests.completed = samples.len() as u64;
        summary.requests.sent = samples.len() as u64;
        summary.throughput.rps = samples.len() as f64;
        summary.latency_us = percentiles(&histogram);
        summary.window_start_unix_ns = start_ns;
        summary
    }

    /// Hosts `a` (clock offset 0) and `b` (clock offset `b_offset_ns`).
    fn hosts_a_and_b<'a>(a: &'a Summary, b: &'a Summary, b_offset_ns: i64) -> [Part<'a>; 2] {
        [
            Part {
                host: "a",
                summary: a,
                clock_offset_ns: 0,
            },
            Part {
                host: "b",
                summary: b,
                clock_offset_ns: b_offset_ns,
            },
        ]
    }

    #[test]
    fn percentiles_come_from_the_added_histograms() {
        // Host a is fast, host b slow: the merged p50 is neither host's p50 nor their mean.
        let a: Vec<u64> = (1..=900).map(|i| 10_000 + i * 10).collect();
        let b: Vec<u64> = (1..=100).map(|i| 5_000_000 + i * 1000).collect();
        let (sa, sb) = (summary(&a, Some(1_000)), summary(&b, Some(1_000)));
        let parts = hosts_a_and_b(&sa, &sb, 0);
        let merged = merge(&parts).unwrap();
        let all = summary(&[a.clone(), b.clone()].concat(), None);
        assert_eq!(merged.latency_us, all.latency_us);
        assert_eq!(merged.latency_us.count, 1000);
        assert_eq!(merged.requests.completed, 1000);
        assert_eq!(merged.requests.errors["timeout"], 2);
        assert_eq!(merged.config.connections, 4);
        assert_eq!(merged.target_rate, Some(1000.0));
        assert_eq!(merged.throughput.rps, 1000.0);
        assert!(merged.latency_us.p99 > 5000.0 && merged.latency_us.p50 < 20.0);
        assert_eq!(merged.warnings, vec!["host a: w", "host b: w"]);
    }

    #[test]
    fn a_missing_histogram_is_an_error_naming_the_host() {
        let sa = summary(&[1000], None);
        let mut sb = summary(&[1000], None);
        sb.histograms.remove("connect");
        let parts = hosts_a_and_b(&sa, &sb, 0);
        assert_eq!(
            merge(&parts).unwrap_err(),
            MergeError::MissingHistogram {
                host: "b".into(),
                name: "connect".into()
            }
        );
    }

    #[test]
    fn a_histogram_no_host_wrote_stays_absent() {
        let mut sa = summary(&[1000], None);
        let mut sb = summary(&[3000], None);
        for s in [&mut sa, &mut sb] {
            s.histograms.remove("connect");
        }
        let parts = hosts_a_and_b(&sa, &sb, 0);
        let merged = merge(&parts).unwrap();
        assert!(!merged.histograms.contains_key("connect"));
        assert_eq!(merged.connect_us, Percentiles::default());
        assert_eq!(merged.latency_us.count, 2);
    }

    #[test]
    fn timeseries_align_on_corrected_wall_clock_seconds() {
        let second = 1_000_000_000u64;
        let mut sa = summary(&[1000], Some(100 * second));
        // b's clock is 300 ms ahead: its window started 0.5 s after a's in real time.
        let mut sb = summary(&[1000], Some(100 * second + 800_000_000));
        let point = |t: f64, rps: f64, p99_us: f64| TimePoint { t, rps, p99_us };
        sa.timeseries = vec![point(1.0, 100.0, 10.0), point(2.0, 100.0, 30.0)];
        sb.timeseries = vec![point(1.0, 50.0, 20.0), point(2.0, 50.0, 20.0)];
        let parts = hosts_a_and_b(&sa, &sb, 300_000_000);
        let (origin, series) = align_timeseries(&parts);
        assert_eq!(origin, Some(100 * second));
        // b's intervals end at 1.5 s and 2.5 s on a's axis: seconds 2 and 3.
        assert_eq!(
            series,
            vec![
                point(1.0, 100.0, 10.0),
                point(2.0, 150.0, 30.0),
                point(3.0, 50.0, 20.0)
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn merged_equals_one_histogram_of_all_samples(
            hosts in proptest::collection::vec(
                proptest::collection::vec(1_000u64..10_000_000_000, 1..200), 1..5),
        ) {
            let summaries: Vec<Summary> = hosts.iter().map(|s| summary(s, None)).collect();
            let names: Vec<String> = (0..summaries.len()).map(|i| format!("h{i}")).collect();
            let parts: Vec<Part<'_>> = summaries
                .iter()
                .zip(&names)
                .map(|(summary, host)| Part { host, summary, clock_offset_ns: 0 })
                .collect();
            let merged = merge(&parts).unwrap();
            let all = summary(&hosts.concat(), None);
            proptest::prop_assert_eq!(merged.latency_us, all.latency_us);
            proptest::prop_assert_eq!(
                merged.requests.completed,
                hosts.iter().map(|h| h.len() as u64).sum::<u64>()
            );
        }
    }
}
