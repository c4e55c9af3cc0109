//! Rendering a report: plans the plots, draws them in parallel (rayon) as PNG and SVG under
//! `<out>/plots/`, then writes `<out>/report.md` and the self-contained `<out>/index.html`.
//! Plot files of an earlier render that this one did not write are removed from `plots/`, so a
//! re-render (`harness report DIR`) matches its pages.
//!
//! This is the last step of the harness data path (sweep spec -> runs -> results -> **plots and
//! report**). It reads only the plain [`Report`]; [`render`] first builds that from
//! `results.json`'s types, so a report can be re-rendered from the file alone.

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::ReportError;
use crate::font;
use crate::from_results::report_from_results;
use crate::html::{self, EmbeddedPlot};
use crate::markdown;
use crate::model::Report;
use crate::plot::{self, RenderedPlot};
use crate::results::Results;
use crate::table::SummaryTable;

/// The subdirectory of the output directory that holds the plot files.
pub const PLOTS_DIR: &str = "plots";

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Every plot, in report order.
    pub plots: Vec<RenderedPlot>,
    /// The Markdown report.
    pub report_md: PathBuf,
    /// The self-contained HTML report.
    pub index_html: PathBuf,
    /// Caveats about the data (also printed in both pages).
    pub notes: Vec<String>,
}

/// The file name `harness sweep` writes results to and `harness report DIR` reads them from.
pub const RESULTS_FILE: &str = "results.json";

/// Render a sweep's results into `out_dir` (created if missing): plots under `plots/`,
/// `report.md` and `index.html`.
pub fn render(results: &Results, out_dir: &Path) -> Result<Rendered, ReportError> {
    render_report(&report_from_results(results), out_dir)
}

/// Re-render from a results file alone (what `harness report DIR` does with
/// `DIR/results.json`), writing into `out_dir`.
pub fn render_results_file(results_json: &Path, out_dir: &Path) -> Result<Rendered, ReportError> {
    let text = fs::read_to_string(results_json).map_err(|e| ReportError::Results {
        path: results_json.to_path_buf(),
        message: e.to_string(),
    })?;
    let results = Results::from_json(&text).map_err(|e| ReportError::Results {
        path: results_json.to_path_buf(),
        message: e.to_string(),
    })?;
    render(&results, out_dir)
}

/// Render a plain report into `out_dir` (created if missing).
pub fn render_report(report: &Report, out_dir: &Path) -> Result<Rendered, ReportError> {
    font::ensure_registered()?;
    let plots_dir = out_dir.join(PLOTS_DIR);
    fs::create_dir_all(&plots_dir).map_err(|e| ReportError::io(&plots_dir, e))?;

    let jobs = plot::plan(report);
    // Each job draws two files on its own backend; only the font table is shared (read-locked).
    let plots: Vec<RenderedPlot> = jobs
        .par_iter()
        .map(|job| job.render_files(&plots_dir))
        .collect::<Result<_, _>>()?;

    remove_stale_plots(&plots_dir, &plots)?;

    let table = SummaryTable::from_report(report);
    let report_md = out_dir.join("report.md");
    let markdown = markdown::render(report, &table, &plots, out_dir);
    fs::write(&report_md, markdown).map_err(|e| ReportError::io(&report_md, e))?;

    let pngs: Vec<Vec<u8>> = plots
        .iter()
        .map(|p| fs::read(&p.png).map_err(|e| ReportError::io(&p.png, e)))
        .collect::<Result<_, _>>()?;
    let embedded: Vec<EmbeddedPlot<'_>> = plots
        .iter()
        .zip(&pngs)
        .map(|(plot, png)| EmbeddedPlot { plot, png })
        .collect();
    let index_html = out_dir.join("index.html");
    fs::write(&index_html, html::render(report, &table, &embedded))
        .map_err(|e| ReportError::io(&index_html, e))?;

    Ok(Rendered {
        plots,
        report_md,
        index_html,
        notes: report.notes.clone(),
    })
}

/// Delete plot files an earlier render left in `plots_dir` that this render did not write (a
/// re-render after the data or the plot layout changed), so the directory matches the pages.
/// Only files named like our plots (`<kind>-*.png|svg`) are touched.
fn remove_stale_plots(plots_dir: &Path, plots: &[RenderedPlot]) -> Result<(), ReportError> {
    let entries = fs::read_dir(plots_dir).map_err(|e| ReportError::io(plots_dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| ReportError::io(plots_dir, e))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let ours = plot::PlotKind::ALL
            .iter()
            .any(|kind| name.starts_with(&format!("{}-", kind.slug())))
            && (name.ends_with(".png") || name.ends_with(".svg"));
        let current = plots.iter().any(|p| p.png == path || p.svg == path);
        if ours && !current {
            fs::remove_file(&path).map_err(|e| ReportError::io(&path, e))?;
        }
    }
    Ok(())
}
