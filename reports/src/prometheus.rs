//! Reading counters out of the Prometheus text a server's `/metrics` endpoint served: the
//! harness keeps each run's scrapes from before and after loadgen ran (`RunRecord::metrics_before`
//! and `metrics_after` in results.json), and figures derived from them (the UDP loops' datagrams
//! per syscall) are computed here, so a report can recompute them from results.json alone.

/// The sum over every label set of the samples of metric `name` in Prometheus text 0.0.4
/// (`name{loop="0"} 12`, `name 12`); `None` when no sample of it is present or parseable.
pub fn sum_samples(text: &str, name: &str) -> Option<f64> {
    let mut sum = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // `name_other` is another metric; a sample continues with labels or a space.
        let value = if let Some(labelled) = rest.strip_prefix('{') {
            labelled.split_once('}').map(|(_, value)| value)
        } else if rest.starts_with([' ', '\t']) {
            Some(rest)
        } else {
            None
        };
        // The value, then an optional timestamp.
        if let Some(value) = value
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
        {
            *sum.get_or_insert(0.0) += value;
        }
    }
    sum
}

/// How much counter `name` (summed over its label sets) grew from `before` to `after`; `None`
/// when `after` lacks it. A counter missing from `before` counts from 0; one that went down (a
/// restarted server) gives 0.
pub fn counter_delta(before: Option<&str>, after: &str, name: &str) -> Option<u64> {
    let end = sum_samples(after, name)?;
    let start = before.and_then(|b| sum_samples(b, name)).unwrap_or(0.0);
    Some((end - start).max(0.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP gev_udp_recv_batches_total x\n\
        # TYPE gev_udp_recv_batches_total counter\n\
        gev_udp_recv_batches_total{loop=\"0\"} 10\n\
        gev_udp_recv_batches_total{loop=\"1\"} 5 1700000000000\n\
        gev_udp_recv_batches_total_other 99\n\
        gev_accepts_total 7\n";

    #[test]
    fn sums_every_label_set_and_nothing_else() {
        assert_eq!(sum_samples(TEXT, "gev_udp_recv_batches_total"), Some(15.0));
        assert_eq!(sum_samples(TEXT, "gev_accepts_total"), Some(7.0));
        assert_eq!(sum_samples(TEXT, "gev_udp_send_batches_total"), None);
        assert_eq!(sum_samples("gev_x{loop=\"0\"} nan-ish\n", "gev_x"), None);
    }

    #[test]
    fn deltas_from_before_to_after() {
        let before = "c{loop=\"0\"} 4\nc{loop=\"1\"} 1\n";
        let after = "c{loop=\"0\"} 10\nc{loop=\"1\"} 5\n";
        assert_eq!(counter_delta(Some(before), after, "c"), Some(10));
        assert_eq!(counter_delta(None, after, "c"), Some(15));
        assert_eq!(counter_delta(Some(after), before, "c"), Some(0));
        assert_eq!(counter_delta(Some(before), "", "c"), None);
    }
}
