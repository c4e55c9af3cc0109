//! The verdict a sweep's reader sees first, and the notes folded to one line per kind.
//!
//! Data path: `results.json` ([`Results`]) -> **verdict lines** -> the top of `report.md`,
//! `index.html` and `harness sweep`'s terminal summary (all three call [`verdict_lines`], so they
//! never disagree). One sentence per load and loop count: the server's CPU time per request as a
//! ratio to each reference with its 95% interval (lower is better), and what limited the
//! throughput (server, generator, both, neither), read from measured CPU utilisation against
//! [`SATURATED_UTILISATION`] (see `LimitReading` in [`crate::results`]).
//!
//! [`fold_notes`] turns the per-run caveats of a sweep (a loaded machine makes loadgen warn on
//! every run) into one line per kind, with a count and the worst value.

use crate::results::{Limit, LimitReading, PointSummary, Results, SATURATED_UTILISATION};

/// One sentence per load and loop count, in the order the summaries came.
pub fn verdict_lines(results: &Results) -> Vec<String> {
    let name_tcp = crate::from_results::several_transports(results);
    let mut lines = Vec::new();
    let mut seen: Vec<&PointSummary> = Vec::new();
    for summary in &results.summaries {
        if seen.iter().any(|s| s.point.same_point(&summary.point)) {
            continue;
        }
        seen.push(summary);
        let at_point: Vec<&PointSummary> = results
            .summaries
            .iter()
            .filter(|s| s.point.same_point(&summary.point))
            .collect();
        lines.push(point_sentence(results, &at_point, name_tcp));
    }
    lines
}

/// The sentence for the summaries of one point; `name_tcp`: say "TCP" at TCP points too (a
/// sweep over several transports).
fn point_sentence(results: &Results, at_point: &[&PointSummary], name_tcp: bool) -> String {
    let references = results.references();
    let point = &at_point[0].point;
    let others: Vec<&&PointSummary> = at_point
        .iter()
        .filter(|s| !references.contains(&s.server.as_str()))
        .collect();
    // With only references at a point, compare them with each other.
    let subjects: Vec<&&PointSummary> = if others.is_empty() {
        at_point.iter().collect()
    } else {
        others
    };
    let mut clauses = Vec::new();
    for summary in subjects {
        let ratios: Vec<String> = summary
            .ratios
            .iter()
            .filter_map(|ratio| {
                ratio
                    .server_cpu_per_request
                    .map(|cpu| (cpu, ratio.reference.as_str()))
            })
            .enumerate()
            .map(|(index, (cpu, reference))| {
                format!(
                    "{:.2}× ({:.2}–{:.2}) {} of {reference}",
                    cpu.median,
                    cpu.low,
                    cpu.high,
                    if index == 0 {
                        "the CPU per request"
                    } else {
                        "that"
                    }
                )
            })
            .collect();
        if !ratios.is_empty() {
            clauses.push(format!("{} needs {}", summary.server, ratios.join(" and ")));
        } else if let Some(cpu) = summary.server_cpu_us_per_request {
            clauses.push(format!(
                "{} needs {:.2} µs ({:.2}–{:.2}) of CPU per request",
                summary.server, cpu.median, cpu.low, cpu.high
            ));
        }
    }
    if clauses.is_empty() {
        clauses.push("no server CPU time was readable, so no cost figures".to_string());
    }
    clauses.extend(
        at_point
            .iter()
            .filter(|s| !references.contains(&s.server.as_str()))
            .filter_map(|s| transport_clause(s)),
    );
    format!(
        "{}: {}; {}.",
        point.describe(name_tcp),
        clauses.join("; "),
        limit_clause(at_point)
    )
}

/// `over UDP gev-echo does 0.95× (0.90–1.01) its TCP req/s at 0.50× (…) the CPU per request`:
/// a server at a Unix-socket or UDP point against itself over TCP (the kernel's TCP share).
fn transport_clause(summary: &PointSummary) -> Option<String> {
    let ratio = summary.vs_tcp.as_ref()?;
    let t = &ratio.throughput;
    let cpu = ratio.server_cpu_per_request.map_or(String::new(), |c| {
        format!(
            " at {:.2}× ({:.2}–{:.2}) the CPU per request",
            c.median, c.low, c.high
        )
    });
    Some(format!(
        "over {} {} does {:.2}× ({:.2}–{:.2}) its TCP req/s{cpu}",
        summary.point.transport.label(),
        summary.server,
        t.median,
        t.low,
        t.high
    ))
}

/// What limited the point: one reading when every server's agrees, else one per server.
fn limit_clause(at_point: &[&PointSummary]) -> String {
    let readings: Vec<(&str, LimitReading)> = at_point
        .iter()
        .filter_map(|s| s.limit.map(|limit| (s.server.as_str(), limit)))
        .collect();
    let Some((_, first)) = readings.first() else {
        return "what limited throughput is unknown (no CPU utilisation was readable)".into();
    };
    if readings.iter().all(|(_, r)| r.limit == first.limit) {
        let server = max_of(&readings, |r| r.server_utilisation);
        let generator = max_of(&readings, |r| r.generator_utilisation);
        return format!(
            "{} (server cores {:.0}% busy, generator {:.0}%)",
            describe(first.limit),
            100.0 * server,
            100.0 * generator
        );
    }
    let each: Vec<String> = readings
        .iter()
        .map(|(server, r)| {
            format!(
                "{server}: {} (server {:.0}%, generator {:.0}%)",
                short(r.limit),
                100.0 * r.server_utilisation,
                100.0 * r.generator_utilisation
            )
        })
        .collect();
    format!("what limited throughput differed: {}", each.join(", "))
}

fn max_of(readings: &[(&str, LimitReading)], pick: fn(&LimitReading) -> f64) -> f64 {
    readings
        .iter()
        .map(|(_, r)| pick(r))
        .fold(f64::NEG_INFINITY, f64::max)
}

fn describe(limit: Limit) -> &'static str {
    match limit {
        Limit::Server => "throughput was limited by the server",
        Limit::Generator => "throughput was limited by the generator",
        Limit::Both => "throughput was limited by both the server and the generator",
        Limit::Neither => {
            "neither the server nor the generator was saturated (round trips, the offered rate or \
             the rest of the machine set the pace)"
        }
    }
}

fn short(limit: Limit) -> &'static str {
    match limit {
        Limit::Server => "the server",
        Limit::Generator => "the generator",
        Limit::Both => "both",
        Limit::Neither => "neither",
    }
}

/// What the schedule means for the figures, for the pages and the terminal.
pub fn schedule_statement(results: &Results) -> String {
    let saturated = format!(
        "A side counts as saturated at {:.0}% busy (CPU time over the measured window, of the \
         cores it could use); server CPU per request is the server process's CPU time (every \
         thread, including the softirq work the kernel does in its context) over the requests \
         completed in the window.",
        100.0 * SATURATED_UTILISATION
    );
    match results.spec.schedule.as_deref() {
        Some("side-by-side") => format!(
            "Schedule: side by side. Every server of a point ran at the same moment on the same \
             server cores, each with its own loadgen, so ratios to the references carry the \
             machine's drift on both sides; absolute req/s and latency are each server's share \
             of a machine it split with the others, not what it does alone. {saturated}"
        ),
        _ => format!(
            "Schedule: alternating. One server ran at a time (repeats interleaved across \
             servers), so absolute req/s and latency are each server's own; ratios to the \
             references also carry how the machine drifted between runs. {saturated}"
        ),
    }
}

/// Folds notes of the same kind into one line each, in order of first appearance: notes that
/// differ only in their numbers and in their `<server> at <point> repeat N:` context are one
/// kind. A kind seen once is kept as written; a repeated kind becomes its worst instance (the
/// one with the largest value where the instances' numbers differ) with how often it came.
pub fn fold_notes(notes: &[String]) -> Vec<String> {
    let mut kinds: Vec<(String, Vec<(&str, &str)>)> = Vec::new();
    for note in notes {
        let (context, message) = split_context(note);
        let kind = shape(message);
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, members)) => members.push((context, message)),
            None => kinds.push((kind, vec![(context, message)])),
        }
    }
    kinds
        .into_iter()
        .map(|(_, members)| {
            if members.len() == 1 {
                let (context, message) = members[0];
                return join(context, message);
            }
            let numbers: Vec<Vec<f64>> = members.iter().map(|(_, m)| numbers_in(m)).collect();
            let varying = (0..numbers[0].len())
                .find(|&i| numbers.iter().any(|n| n.get(i) != numbers[0].get(i)));
            let worst = varying.map_or(0, |i| {
                (0..members.len())
                    .max_by(|&a, &b| {
                        let value = |k: usize| numbers[k].get(i).copied().unwrap_or(f64::MIN);
                        value(a).total_cmp(&value(b))
                    })
                    .unwrap_or(0)
            });
            let (context, message) = members[worst];
            let which = if varying.is_some() {
                "the worst"
            } else {
                "the first"
            };
            format!(
                "{message} ({} times; {which}: {})",
                members.len(),
                if context.is_empty() { "-" } else { context }
            )
        })
        .collect()
}

fn join(context: &str, message: &str) -> String {
    if context.is_empty() {
        message.to_string()
    } else {
        format!("{context}: {message}")
    }
}

/// Splits `<server> at <point> repeat N: message` (or `<server> at <point>: loadgen: ...`) into
/// the context and the message; notes without such a prefix have no context.
fn split_context(note: &str) -> (&str, &str) {
    if let Some(at) = note.find(" repeat ") {
        let rest = &note[at + " repeat ".len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(": ") {
            let end = at + " repeat ".len() + digits;
            return (&note[..end], &note[end + 2..]);
        }
    }
    if let Some(at) = note.find(": loadgen: ") {
        return (&note[..at], &note[at + 2..]);
    }
    ("", note)
}

/// The message with every number (and a unit written right after it: `ms`, `s`, `µs`, ...)
/// replaced by `#`, so `lag 309ms` and `lag 1.1s` are the same kind.
fn shape(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..start]);
        let (_, length) = number_at(&rest[start..]);
        out.push('#');
        rest = &rest[start + length..];
    }
    out.push_str(rest);
    out
}

/// The numbers in a message, in order, scaled by their time unit (`ms`, `µs`, `us`, `ns`) to
/// seconds where they carry one, so values in different units compare.
fn numbers_in(message: &str) -> Vec<f64> {
    let mut numbers = Vec::new();
    let mut rest = message;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        let (value, length) = number_at(&rest[start..]);
        numbers.extend(value);
        rest = &rest[start + length..];
    }
    numbers
}

/// The number at the start of `text` (digits and one decimal point) with its unit suffix, and
/// how many bytes both take.
fn number_at(text: &str) -> (Option<f64>, usize) {
    let digits = text
        .char_indices()
        .take_while(|(i, c)| c.is_ascii_digit() || (*c == '.' && *i > 0))
        .map(|(i, c)| i + c.len_utf8())
        .last()
        .unwrap_or(0);
    let number = text[..digits].trim_end_matches('.');
    let unit_length = text[digits..]
        .char_indices()
        .take_while(|(_, c)| c.is_alphabetic())
        .map(|(i, c)| i + c.len_utf8())
        .last()
        .unwrap_or(0);
    let scale = match &text[digits..digits + unit_length] {
        "ms" => 1e-3,
        "µs" | "us" => 1e-6,
        "ns" => 1e-9,
        _ => 1.0,
    };
    (
        number.parse::<f64>().ok().map(|v| v * scale),
        digits + unit_length,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_warnings_fold_to_one_line_with_count_and_worst() {
        let notes: Vec<String> = [97, 99, 98]
            .iter()
            .enumerate()
            .map(|(repeat, busy)| {
                format!(
                    "gev-echo at loops=1 raw 64 B, 32 conns, closed loop repeat {repeat}: \
                     loadgen: generator thread 0 was busy {busy}% of the measured time"
                )
            })
            .chain(["not pinned: 1 usable core(s)".to_string()])
            .collect();
        let folded = fold_notes(&notes);
        assert_eq!(folded.len(), 2, "{folded:?}");
        assert!(
            folded[0].starts_with("loadgen: generator thread 0 was busy 99% of the measured time"),
            "{folded:?}"
        );
        assert!(folded[0].contains("(3 times; the worst: gev-echo at loops=1"));
        assert!(folded[0].contains("repeat 1)"), "{folded:?}");
        assert_eq!(folded[1], "not pinned: 1 usable core(s)");
    }

    #[test]
    fn single_notes_keep_their_context() {
        let notes = vec!["a at loops=1 w repeat 0: server stop was not clean: Killed".to_string()];
        assert_eq!(fold_notes(&notes), notes);
        assert_eq!(shape("busy 97.5% of 4 s"), "busy #% of # s");
        assert_eq!(numbers_in("busy 97.5% of 4 s."), vec![97.5, 4.0]);
        // Units right after a number are part of it: one kind, compared in seconds.
        assert_eq!(shape("lag p99 309.59ms, max"), shape("lag p99 1.10s, max"));
        assert_eq!(numbers_in("lag 309.5ms or 2µs"), vec![0.3095, 2e-6]);
        let lagging = vec![
            "a at loops=1 w repeat 0: loadgen: lag p99 309.59ms".to_string(),
            "a at loops=1 w repeat 1: loadgen: lag p99 1.10s".to_string(),
        ];
        let folded = fold_notes(&lagging);
        assert_eq!(folded.len(), 1, "{folded:?}");
        assert!(
            folded[0].starts_with("loadgen: lag p99 1.10s (2 times"),
            "{folded:?}"
        );
    }
}
