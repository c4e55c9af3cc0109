//! The result of one `harness compare`, as plain data (serialised for `--json`, schema
//! [`SCHEMA`]) and as the markdown table a CI job posts on a pull request.
//!
//! Where it sits: runs -> analysis (`analysis.rs`) -> **this report** -> stdout and the exit code
//! ([`CompareReport::regressed`] means exit 1). Rendering never measures or recomputes anything.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::analysis::{Evidence, MetricComparison, RunFigures};
use super::session::Schedule;
use crate::callgrind::CallgrindComparison;
use crate::stats::Verdict;

/// The value of [`CompareReport::schema`] this version writes.
pub const SCHEMA: &str = "gev-compare/1";

/// Everything one comparison found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
    /// Always [`SCHEMA`].
    pub schema: String,
    pub evidence: Evidence,
    /// How the two servers' runs were placed in time (absent against a stored baseline, where
    /// only the candidate runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// What the baseline was: a command run here, or a stored baseline's description.
    pub baseline: String,
    /// The candidate's command.
    pub candidate: String,
    /// The gate's threshold in percent (a ratio outside 1 ± threshold is a change).
    pub threshold_percent: f64,
    /// Runs of each side per point (after any `--until-confident` additions).
    pub repeats: usize,
    pub points: Vec<PointReport>,
    /// Instructions per message, when `--callgrind` was given.
    pub callgrind: Option<CallgrindComparison>,
    /// Whether any metric of any point is `regressed` (the gate fails).
    pub regressed: bool,
    /// Caveats to show next to the table (e.g. repeats capped while still inconclusive).
    pub notes: Vec<String>,
}

/// One load setting's runs and readings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointReport {
    /// The load settings, e.g. `loops=1 conns=50 size=64 raw 2s`.
    pub point: String,
    pub metrics: Vec<MetricComparison>,
    pub baseline_runs: Vec<RunFigures>,
    pub candidate_runs: Vec<RunFigures>,
}

impl CompareReport {
    /// Whether any reading of any point is still `inconclusive`.
    pub fn any_inconclusive(&self) -> bool {
        self.points
            .iter()
            .flat_map(|p| &p.metrics)
            .any(|m| m.verdict == Verdict::Inconclusive)
    }

    /// The JSON form, pretty-printed.
    pub fn to_json(&self) -> String {
        // Serialising plain structs with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The markdown a CI job posts: a headline, how strong the evidence is, the table, the
    /// instruction counts.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let headline = if self.regressed {
            "❌ regression"
        } else {
            "✅ no regression"
        };
        let _ = writeln!(out, "## gev performance gate: {headline}\n");
        match self.evidence {
            Evidence::SameRunPaired => {
                let placement = match self.schedule {
                    Some(Schedule::Alternating) | None => {
                        "one after the other, interleaved (A B B A …)"
                    }
                    Some(Schedule::SideBySide) => {
                        "side by side (both at once on the same cores, each with its own \
                         loadgen; the figures are each server's share of the machine)"
                    }
                };
                let _ = writeln!(
                    out,
                    "Baseline `{}` and candidate `{}` ran in the same session, {placement}, \
                     {} rounds per point. Ratio = candidate / baseline, geometric mean of the \
                     paired runs with a 95% t interval. Threshold ±{}%: a verdict needs the \
                     whole interval past (or within) it.\n",
                    self.baseline, self.candidate, self.repeats, self.threshold_percent
                );
            }
            Evidence::StoredBaseline => {
                let _ = writeln!(
                    out,
                    "> ⚠️ **Weaker evidence**: the baseline is {}, measured in a different \
                     session, so machine load and state may differ between the two sides; \
                     prefer a same-run comparison (`scripts/ci-bench.sh`).\n",
                    self.baseline
                );
                let _ = writeln!(
                    out,
                    "Candidate `{}`: {} runs per point. Ratio = candidate / baseline medians with \
                     a 95% bootstrap interval. Threshold ±{}%.\n",
                    self.candidate, self.repeats, self.threshold_percent
                );
            }
        }
        let _ = writeln!(
            out,
            "| point | metric | baseline | candidate | ratio (95% CI) | verdict |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---|---|");
        for point in &self.points {
            for reading in &point.metrics {
                let verdict = match reading.verdict {
                    Verdict::Regressed => "**regressed** ❌".to_string(),
                    Verdict::Improved => "improved 🚀".to_string(),
                    other => other.to_string(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.3} [{:.3}, {:.3}] | {} |",
                    point.point,
                    reading.metric.label(),
                    format_number(reading.baseline_median),
                    format_number(reading.candidate_median),
                    reading.ratio.point,
                    reading.ratio.low,
                    reading.ratio.high,
                    verdict
                );
            }
        }
        if let Some(counts) = &self.callgrind {
            let _ = writeln!(
                out,
                "\nInstructions per echoed message (callgrind, one loop, {} ping-pongs, \
                 deterministic): baseline {}, candidate {}, **{:+.2}%**.",
                counts.candidate.messages,
                format_number(counts.baseline.instructions_per_message),
                format_number(counts.candidate.instructions_per_message),
                counts.delta_percent
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "\nNote: {note}");
        }
        out
    }
}

/// Three significant decimals for small values, whole numbers for large ones.
fn format_number(value: f64) -> String {
    if value.abs() >= 1000.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::analysis::{compare_runs, Metric};

    fn report(candidate_scale: f64, evidence: Evidence) -> CompareReport {
        // Six rounds: the fewest a regressed verdict may come from.
        let baseline: Vec<RunFigures> = [
            100_000.0, 99_000.0, 101_000.0, 100_500.0, 99_500.0, 100_200.0,
        ]
        .iter()
        .map(|&r| RunFigures {
            throughput_rps: r,
            p50_us: 500.0,
            p99_us: 900.0,
            server_cpu_us_per_request: None,
        })
        .collect();
        let candidate: Vec<RunFigures> = baseline
            .iter()
            .map(|f| RunFigures {
                throughput_rps: f.throughput_rps * candidate_scale,
                p50_us: f.p50_us / candidate_scale,
                p99_us: f.p99_us / candidate_scale,
                server_cpu_us_per_request: None,
            })
            .collect();
        let metrics = compare_runs(&baseline, &candidate, evidence, 0.05).unwrap();
        let regressed = metrics.iter().any(|m| m.verdict == Verdict::Regressed);
        CompareReport {
            schema: SCHEMA.to_string(),
            evidence,
            schedule: (evidence == Evidence::SameRunPaired).then_some(Schedule::SideBySide),
            baseline: "gev-echo (old)".to_string(),
            candidate: "gev-echo (new)".to_string(),
            threshold_percent: 5.0,
            repeats: 6,
            points: vec![PointReport {
                point: "loops=1 conns=50 size=64 raw 2s".to_string(),
                metrics,
                baseline_runs: baseline,
                candidate_runs: candidate,
            }],
            callgrind: None,
            regressed,
            notes: Vec::new(),
        }
    }

    #[test]
    fn markdown_has_a_row_per_metric_and_the_headline_of_the_gate() {
        let slower = report(0.8, Evidence::SameRunPaired);
        assert!(slower.regressed);
        let text = slower.to_markdown();
        assert!(text.contains("❌ regression"), "{text}");
        let rows = text.lines().filter(|l| l.starts_with("| loops=1")).count();
        // These synthetic runs carry no server CPU figure, so that metric has no row.
        assert_eq!(rows, slower.points[0].metrics.len());
        assert_eq!(rows, Metric::ALL.len() - 1);
        assert!(text.contains("**regressed**"));

        let same = report(1.0, Evidence::SameRunPaired);
        assert!(!same.regressed);
        let text = same.to_markdown();
        assert!(text.contains("✅ no regression"), "{text}");
        assert!(text.contains("side by side"), "{text}");
        let alternating = CompareReport {
            schedule: Some(Schedule::Alternating),
            ..same
        };
        assert!(alternating.to_markdown().contains("(A B B A …)"));
    }

    #[test]
    fn stored_baselines_are_labelled_weaker_evidence() {
        let text = report(1.0, Evidence::StoredBaseline).to_markdown();
        assert!(text.contains("Weaker evidence"), "{text}");
    }

    #[test]
    fn instruction_counts_are_shown_with_their_delta() {
        let count = |per_message| crate::callgrind::InstructionCount {
            instructions_per_message: per_message,
            short_total: 1_000_000,
            long_total: 1_000_000 + (per_message * 10_000.0) as u64,
            messages: 10_000,
        };
        let mut with_counts = report(1.0, Evidence::SameRunPaired);
        with_counts.callgrind = Some(CallgrindComparison::new(count(1500.0), count(1530.0)));
        let text = with_counts.to_markdown();
        assert!(
            text.contains("baseline 1500, candidate 1530, **+2.00%**"),
            "{text}"
        );
    }

    #[test]
    fn json_round_trips() {
        let original = report(0.97, Evidence::SameRunPaired);
        let parsed: CompareReport = serde_json::from_str(&original.to_json()).unwrap();
        assert_eq!(parsed, original);
    }
}
