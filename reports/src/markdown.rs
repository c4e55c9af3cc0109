//! report.md: the report as Markdown, for reading in a terminal, a code review or a repository
//! browser. It holds the environment, the summary table with ratios to the reference servers, and
//! links to every plot (PNG shown inline, SVG linked), grouped by plot kind.

use std::path::Path;

use crate::model::Report;
use crate::plot::{PlotKind, RenderedPlot};
use crate::table::SummaryTable;

/// The Markdown text of a report; plot paths are written relative to `out_dir`.
pub fn render(
    report: &Report,
    table: &SummaryTable,
    plots: &[RenderedPlot],
    out_dir: &Path,
) -> String {
    let mut md = String::new();
    md.push_str(&format!("# {}\n\n", inline(&report.title)));

    if !report.verdicts.is_empty() {
        md.push_str("## Verdict\n\n");
        for line in &report.verdicts {
            md.push_str(&format!("- {}\n", inline(line)));
        }
        md.push('\n');
    }
    if let Some(schedule) = &report.schedule {
        md.push_str(&format!("{}\n\n", inline(schedule)));
    }

    md.push_str("## Environment\n\n");
    if report.environment.is_empty() {
        md.push_str("No environment was recorded.\n\n");
    } else {
        md.push_str("| | |\n|---|---|\n");
        for (key, value) in &report.environment {
            md.push_str(&format!("| {} | {} |\n", cell(key), cell(value)));
        }
        md.push('\n');
    }

    md.push_str("## Summary\n\n");
    if table.rows.is_empty() {
        md.push_str("The results hold no measured points.\n\n");
    } else {
        if table.references.is_empty() {
            md.push_str("No reference server ran, so there are no ratios.\n\n");
        } else {
            md.push_str(&format!(
                "Ratios compare each server with {} at the same load and loop count in the same \
                 run: req/s above 1, p99 and server CPU per request below 1 are better.\n\n",
                table.references.join(" and ")
            ));
        }
        md.push_str(&row(&table.headers));
        md.push_str(&format!("|{}\n", "---|".repeat(table.headers.len())));
        for r in &table.rows {
            md.push_str(&row(&r.cells));
        }
        md.push('\n');
    }

    if !report.notes.is_empty() {
        md.push_str("## Notes\n\n");
        for note in &report.notes {
            md.push_str(&format!("- {}\n", inline(note)));
        }
        md.push('\n');
    }

    md.push_str("## Plots\n\n");
    for kind in PlotKind::ALL {
        let of_kind: Vec<&RenderedPlot> = plots.iter().filter(|p| p.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        md.push_str(&format!("### {}\n\n", kind.heading()));
        for plot in of_kind {
            let png = relative(&plot.png, out_dir);
            let svg = relative(&plot.svg, out_dir);
            md.push_str(&format!(
                "![{}]({png})\n\n[SVG]({svg})\n\n",
                inline(&plot.title).replace(['[', ']'], "")
            ));
        }
    }
    md
}

/// A path relative to the output directory, with `/` separators, for links.
fn relative(path: &Path, base: &Path) -> String {
    let rel = path.strip_prefix(base).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// One table row.
fn row(cells: &[String]) -> String {
    let mut line = String::from("|");
    for c in cells {
        line.push_str(&format!(" {} |", cell(c)));
    }
    line.push('\n');
    line
}

/// Text made safe for a table cell: no pipes or line breaks.
fn cell(text: &str) -> String {
    inline(text).replace('|', "\\|")
}

/// Text made safe for one line of Markdown.
fn inline(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn escapes_cells_and_links_relative() {
        let report = Report {
            title: "t".into(),
            environment: vec![("cpu".into(), "a | b\nc".into())],
            ..Report::default()
        };
        let plots = vec![RenderedPlot {
            kind: PlotKind::Spectrum,
            title: "Spectrum [x]".into(),
            png: PathBuf::from("/out/plots/s.png"),
            svg: PathBuf::from("/out/plots/s.svg"),
        }];
        let md = render(&report, &SummaryTable::default(), &plots, Path::new("/out"));
        assert!(md.contains("| cpu | a \\| b c |"), "{md}");
        assert!(md.contains("![Spectrum x](plots/s.png)"), "{md}");
        assert!(md.contains("[SVG](plots/s.svg)"));
        assert!(md.contains("### Latency percentile spectrum"));
        assert!(md.contains("no measured points"));
        assert!(!md.contains("## Verdict"));
        let with_verdict = Report {
            verdicts: vec!["loops=1 w: gev needs 0.96× (0.94–0.98) the CPU per request".into()],
            schedule: Some("Schedule: side by side.".into()),
            ..report
        };
        let md = render(
            &with_verdict,
            &SummaryTable::default(),
            &plots,
            Path::new("/out"),
        );
        let verdict = md.find("## Verdict").expect("a verdict section");
        assert!(verdict < md.find("## Environment").unwrap(), "{md}");
        assert!(md.contains("- loops=1 w: gev needs 0.96×"), "{md}");
        assert!(md.contains("Schedule: side by side."), "{md}");
    }
}
