//! Reading load-generator summaries (`gev_loadgen::Summary`, schema "gev-loadgen/1") into the
//! plain report model: the per-second time series, the latency percentiles, and the latency HdrHistograms decoded from their base64 V2 strings and merged over repeats.
//!
//! Nothing here fails: a summary without a histogram, or with one that does not decode, yields
//! [`LatencyHistogram::Missing`] / [`LatencyHistogram::Invalid`] plus a note, and the spectrum
//! plot says so on its face.

use gev_loadgen::Summary;
use hdrhistogram::Histogram;

use crate::hdr;
use crate::model::{LatencyHistogram, LatencySummary, TimeSample};

/// The name of the corrected latency histogram in `Summary::histograms`.
pub const LATENCY_HISTOGRAM: &str = "latency";

/// The per-second samples of a run.
pub fn time_samples(summary: &Summary) -> Vec<TimeSample> {
    summary
        .timeseries
        .iter()
        .map(|point| TimeSample {
            t_secs: point.t,
            rps: point.rps,
            p99_us: point.p99_us,
        })
        .collect()
}

/// A run's corrected latency percentiles.
pub fn latency_summary(summary: &Summary) -> LatencySummary {
    LatencySummary {
        p50: summary.latency_us.p50,
        p99: summary.latency_us.p99,
        p999: summary.latency_us.p999,
    }
}

/// Decode and merge the corrected latency histograms of a point's runs. Runs whose histogram is
/// missing or invalid are left out and named in the returned notes (`context` says which point);
/// if no run has a usable one, the result says why.
pub fn merged_latency_histogram<'a>(
    summaries: impl IntoIterator<Item = &'a Summary>,
    context: &str,
) -> (LatencyHistogram, Vec<String>) {
    let mut decoded: Vec<Histogram<u64>> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut runs = 0usize;
    for (index, summary) in summaries.into_iter().enumerate() {
        runs += 1;
        match summary.histograms.get(LATENCY_HISTOGRAM) {
            None => problems.push(format!("run {}: no latency histogram", index + 1)),
            Some(text) => match hdr::decode_base64(text) {
                Ok(histogram) => decoded.push(histogram),
                Err(reason) => problems.push(format!("run {}: {reason}", index + 1)),
            },
        }
    }
    let notes: Vec<String> = if decoded.is_empty() {
        Vec::new()
    } else {
        problems
            .iter()
            .map(|p| format!("{context}: spectrum leaves out {p}"))
            .collect()
    };
    let histogram = match hdr::merge(&decoded) {
        Ok(Some(merged)) => LatencyHistogram::Recorded(Box::new(merged)),
        Ok(None) if runs == 0 => LatencyHistogram::Missing,
        Ok(None) if problems.iter().all(|p| p.ends_with("no latency histogram")) => {
            LatencyHistogram::Missing
        }
        Ok(None) => LatencyHistogram::Invalid(problems.join("; ")),
        Err(reason) => LatencyHistogram::Invalid(reason),
    };
    (histogram, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use gev_loadgen::{Connections, Env, Percentiles, Requests, RunConfig, Throughput, TimePoint};
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
    use std::collections::BTreeMap;

    fn summary(histogram: Option<String>) -> Summary {
        let mut histograms = BTreeMap::new();
        if let Some(h) = histogram {
            histograms.insert(LATENCY_HISTOGRAM.to_string(), h);
        }
        Summary {
            schema: gev_loadgen::SCHEMA.into(),
            config: RunConfig {
                target: "127.0.0.1:1".into(),
                framing: "raw".into(),
                connections: 50,
                threads: 1,
                duration_secs: Some(1.0),
                warmup_secs: 0.0,
                requests: None,
                pipeline: 1,
                rate: None,
                size_min: 64,
                size_max: 64,
                verify: false,
                timeout_ms: 1000,
                connect_rate: None,
                pin: false,
                http_method: None,
                ws_message: None,
            },
            env: Env {
                cpu_model: "cpu".into(),
                cores: 2,
                kernel: "k".into(),
                version: "v".into(),
            },
            connections: Connections::default(),
            requests: Requests::default(),
            throughput: Throughput::default(),
            target_rate: None,
            latency_us: Percentiles {
                p50: 1.0,
                p99: 2.0,
                p999: 3.0,
                ..Percentiles::default()
            },
            latency_uncorrected_us: Percentiles::default(),
            connect_us: Percentiles::default(),
            loop_lag_us: Percentiles::default(),
            histograms,
            timeseries: vec![TimePoint {
                t: 1.0,
                rps: 10.0,
                p99_us: 5.0,
            }],
            warnings: Vec::new(),
            duration_secs: 1.0,
            generator_cpu_percent: Vec::new(),
            misbehaving: None,
            window_start_unix_ns: None,
            tls: None,
            datagrams: None,
        }
    }

    fn encoded(values: &[u64]) -> String {
        let mut h = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).unwrap();
        for v in values {
            h.record(*v).unwrap();
        }
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&h, &mut bytes)
            .unwrap();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn reads_series_and_percentiles() {
        let s = summary(None);
        assert_eq!(time_samples(&s)[0].p99_us, 5.0);
        assert_eq!(latency_summary(&s).p999, 3.0);
    }

    #[test]
    fn merges_good_histograms_and_notes_bad_ones() {
        let good = summary(Some(encoded(&[1_000, 2_000, 3_000])));
        let bad = summary(Some("!!".into()));
        let (h, notes) = merged_latency_histogram([&good, &good, &bad], "gev 1 loop");
        let LatencyHistogram::Recorded(h) = h else {
            panic!("expected a merged histogram");
        };
        assert_eq!(h.len(), 6);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("gev 1 loop: spectrum leaves out run 3"),
            "{notes:?}"
        );
    }

    #[test]
    fn reports_why_there_is_no_histogram() {
        let none = summary(None);
        let (h, _) = merged_latency_histogram([&none], "p");
        assert!(matches!(h, LatencyHistogram::Missing));
        let bad = summary(Some("!!".into()));
        let (h, notes) = merged_latency_histogram([&bad, &none], "p");
        let LatencyHistogram::Invalid(reason) = h else {
            panic!("expected invalid");
        };
        assert!(reason.contains("base64"), "{reason}");
        assert!(notes.is_empty());
        let (h, _) = merged_latency_histogram([], "p");
        assert!(matches!(h, LatencyHistogram::Missing));
    }
}
