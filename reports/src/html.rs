//! index.html: the report as one self-contained page. Every PNG plot is embedded as a base64
//! `data:` URI, styles are inline, nothing is fetched: the file can be mailed, attached to a CI
//! run or opened from a tarball and shows everything. It holds the same environment, summary
//! table (from `table`) and notes as report.md.

use base64::Engine;

use crate::model::Report;
use crate::plot::{PlotKind, RenderedPlot};
use crate::table::SummaryTable;

/// A rendered plot with its PNG bytes, ready to embed.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedPlot<'a> {
    /// The plot's files and caption.
    pub plot: &'a RenderedPlot,
    /// The PNG file's contents.
    pub png: &'a [u8],
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:2em auto;max-width:1280px;\
color:#222;padding:0 1em}h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em}\
table{border-collapse:collapse;font-size:.9em;margin:1em 0}th,td{border:1px solid #ccc;\
padding:.25em .6em;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}\
figure{margin:1.5em 0}img{max-width:100%;height:auto;border:1px solid #ddd}\
figcaption{font-size:.9em;color:#555}.ref{background:#f7f7ff}\
ul.verdict{font-size:1.05em;line-height:1.5}p.schedule{color:#444;font-size:.9em}";

/// The HTML text of a report.
pub fn render(report: &Report, table: &SummaryTable, plots: &[EmbeddedPlot<'_>]) -> String {
    let mut html = String::new();
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    html.push_str(&format!("<title>{}</title>\n", escape(&report.title)));
    html.push_str(&format!("<style>{STYLE}</style>\n</head>\n<body>\n"));
    html.push_str(&format!("<h1>{}</h1>\n", escape(&report.title)));

    if !report.verdicts.is_empty() {
        html.push_str("<h2>Verdict</h2>\n<ul class=\"verdict\">\n");
        for line in &report.verdicts {
            html.push_str(&format!("<li>{}</li>\n", escape(line)));
        }
        html.push_str("</ul>\n");
    }
    if let Some(schedule) = &report.schedule {
        html.push_str(&format!("<p class=\"schedule\">{}</p>\n", escape(schedule)));
    }

    html.push_str("<h2>Environment</h2>\n");
    if report.environment.is_empty() {
        html.push_str("<p>No environment was recorded.</p>\n");
    } else {
        html.push_str("<table class=\"environment\">\n");
        for (key, value) in &report.environment {
            html.push_str(&format!(
                "<tr><th>{}</th><td>{}</td></tr>\n",
                escape(key),
                escape(value)
            ));
        }
        html.push_str("</table>\n");
    }

    html.push_str("<h2>Summary</h2>\n");
    if table.rows.is_empty() {
        html.push_str("<p>The results hold no measured points.</p>\n");
    } else {
        if table.references.is_empty() {
            html.push_str("<p>No reference server ran, so there are no ratios.</p>\n");
        } else {
            html.push_str(&format!(
                "<p>Ratios compare each server with {} at the same load and loop count in the \
                 same run: req/s above 1, p99 and server CPU per request below 1 are better.</p>\n",
                escape(&table.references.join(" and "))
            ));
        }
        html.push_str("<table class=\"summary\">\n<tr>");
        for header in &table.headers {
            html.push_str(&format!("<th>{}</th>", escape(header)));
        }
        html.push_str("</tr>\n");
        for row in &table.rows {
            let is_reference = table.references.contains(&row.key.server);
            html.push_str(if is_reference {
                "<tr class=\"ref\">"
            } else {
                "<tr>"
            });
            for cell in &row.cells {
                html.push_str(&format!("<td>{}</td>", escape(cell)));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</table>\n");
    }

    if !report.notes.is_empty() {
        html.push_str("<h2>Notes</h2>\n<ul>\n");
        for note in &report.notes {
            html.push_str(&format!("<li>{}</li>\n", escape(note)));
        }
        html.push_str("</ul>\n");
    }

    html.push_str("<h2>Plots</h2>\n");
    for kind in PlotKind::ALL {
        let of_kind: Vec<&EmbeddedPlot<'_>> =
            plots.iter().filter(|p| p.plot.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        html.push_str(&format!("<h3>{}</h3>\n", escape(kind.heading())));
        for embedded in of_kind {
            let data = base64::engine::general_purpose::STANDARD.encode(embedded.png);
            let file = embedded
                .plot
                .png
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            html.push_str(&format!(
                "<figure id=\"{}\"><img alt=\"{}\" src=\"data:image/png;base64,{data}\">\
                 <figcaption>{} ({})</figcaption></figure>\n",
                escape(file.trim_end_matches(".png")),
                escape(&embedded.plot.title),
                escape(&embedded.plot.title),
                escape(&file),
            ));
        }
    }
    html.push_str("</body>\n</html>\n");
    html
}

/// Escape text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn embeds_png_as_data_uri() {
        let report = Report {
            title: "<sweep>".into(),
            notes: vec!["generator was the bottleneck".into()],
            ..Report::default()
        };
        let plot = RenderedPlot {
            kind: PlotKind::Throughput,
            title: "Throughput".into(),
            png: PathBuf::from("plots/throughput-w.png"),
            svg: PathBuf::from("plots/throughput-w.svg"),
        };
        let png = [0x89u8, b'P', b'N', b'G'];
        let html = render(
            &report,
            &SummaryTable::default(),
            &[EmbeddedPlot {
                plot: &plot,
                png: &png,
            }],
        );
        assert!(html.contains("<title>&lt;sweep&gt;</title>"));
        assert!(
            html.contains("src=\"data:image/png;base64,iVBORw==\""),
            "{html}"
        );
        assert!(html.contains("id=\"throughput-w\""));
        assert!(html.contains("<li>generator was the bottleneck</li>"));
        assert!(!html.contains("<sweep>"));
    }
}
