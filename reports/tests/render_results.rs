//! End-to-end: render a synthetic harness `Results` (real HdrHistograms encoded as V2 base64 in
//! the loadgen summaries) into a temporary directory, check every file, then re-render from the
//! `results.json` alone as `harness report DIR` does and check the same files come out.

mod common;

use std::collections::BTreeSet;
use std::fs;

use gev_reports::plot::PlotKind;
use gev_reports::{render, render_results_file, ReportError, Results, RESULTS_FILE};

fn file_names(dir: &std::path::Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn results_render_every_plot_table_and_environment() {
    let results = common::synthetic_results();
    let out = tempfile::tempdir().unwrap();
    let rendered = render(&results, out.path()).unwrap();

    let loads = 1 + common::RATES.len();
    let count = |kind| rendered.plots.iter().filter(|p| p.kind == kind).count();
    assert_eq!(count(PlotKind::Throughput), loads);
    // The synthetic summaries carry server CPU per request: one cost plot beside each
    // throughput plot.
    assert_eq!(count(PlotKind::ServerCost), loads);
    assert_eq!(count(PlotKind::Latency), loads);
    assert_eq!(count(PlotKind::Spectrum), loads * common::LOOPS.len());
    assert_eq!(count(PlotKind::OfferedLoad), common::LOOPS.len());
    assert_eq!(count(PlotKind::Timeseries), loads * common::SERVERS.len());

    let html = fs::read_to_string(&rendered.index_html).unwrap();
    let md = fs::read_to_string(&rendered.report_md).unwrap();
    common::assert_plots_in_pages(&rendered, &html, &md);
    // Spectra come from the decoded histograms: every server has a curve with its sample count.
    for plot in rendered
        .plots
        .iter()
        .filter(|p| p.kind == PlotKind::Spectrum)
    {
        let texts = common::svg_texts(&plot.svg).join("\n");
        for server in common::SERVERS {
            assert!(
                texts.contains(&format!("{server} (60k samples)")),
                "{texts}"
            );
        }
        assert!(texts.contains("99.9%"), "{texts}");
    }

    for page in [&html, &md] {
        assert!(page.contains("gev sweep · sweeps/synthetic.toml · 2026-11-25T13:45:00Z"));
        assert!(page.contains("rustc 1.85.0"));
        assert!(page.contains("0123abc"));
        assert!(page.contains("server on core 0, loadgen on core 1 (taskset)"));
        assert!(page.contains("req/s ÷ ref-tokio-echo"));
        assert!(page.contains("req/s ÷ ref-mio-echo"));
        assert!(page.contains("server µs CPU/req (95%)"));
        assert!(page.contains("Verdict"));
        assert!(page.contains("Schedule: alternating."));
        assert!(page.contains("server never opened its port within 5 s"));
        assert!(page.contains("synthetic data"));
    }
    // One table row per summary; the harness's ratio intervals are shown.
    let md_rows = md.lines().filter(|l| l.starts_with("| raw 64 B")).count();
    assert_eq!(md_rows, results.summaries.len());
    let gev_vs_tokio = 1.0 / (45_000.0 * 0.85 / (60_000.0 * 0.95));
    let cell = format!(
        "{:.2}× ({:.2}–{:.2})",
        gev_vs_tokio,
        gev_vs_tokio * 0.95,
        gev_vs_tokio * 1.05
    );
    assert!(md.contains(&cell), "{cell} not in\n{md}");
}

#[test]
fn report_re_renders_from_results_json_alone() {
    let results = common::synthetic_results();
    let first = tempfile::tempdir().unwrap();
    let json = first.path().join(RESULTS_FILE);
    fs::write(&json, results.to_json()).unwrap();
    let direct = render(&results, first.path()).unwrap();

    let second = tempfile::tempdir().unwrap();
    let again = render_results_file(&json, second.path()).unwrap();
    assert_eq!(direct.plots.len(), again.plots.len());
    assert_eq!(
        file_names(&first.path().join("plots")),
        file_names(&second.path().join("plots"))
    );
    // Same data, same drawing: the plots are byte-identical.
    for (a, b) in direct.plots.iter().zip(&again.plots) {
        assert_eq!(fs::read(&a.png).unwrap(), fs::read(&b.png).unwrap());
        assert_eq!(fs::read(&a.svg).unwrap(), fs::read(&b.svg).unwrap());
    }
    assert_eq!(
        fs::read_to_string(&direct.report_md).unwrap(),
        fs::read_to_string(&again.report_md).unwrap().replace(
            &second.path().display().to_string(),
            &first.path().display().to_string()
        )
    );
}

#[test]
fn re_render_removes_only_its_own_stale_plots() {
    let out = tempfile::tempdir().unwrap();
    let plots = out.path().join("plots");
    fs::create_dir_all(&plots).unwrap();
    fs::write(plots.join("timeseries-old-layout-l1.png"), b"old").unwrap();
    fs::write(plots.join("notes.txt"), b"keep").unwrap();
    fs::write(plots.join("mine.png"), b"keep").unwrap();
    let rendered = render(&common::synthetic_results(), out.path()).unwrap();
    let names = file_names(&plots);
    assert!(!names.contains("timeseries-old-layout-l1.png"));
    assert!(names.contains("notes.txt") && names.contains("mine.png"));
    assert_eq!(names.len(), 2 * rendered.plots.len() + 2);
}

#[test]
fn missing_and_corrupt_histograms_become_notes_and_captions() {
    let mut results = common::synthetic_results();
    // One point loses every histogram, another gets a corrupt one in a single repeat.
    for run in results.runs.iter_mut() {
        if run.server == "ref-mio-echo" && run.point.loops == 1 && run.point.rate.is_none() {
            run.summary.histograms.clear();
        }
        if run.server == "gev-echo"
            && run.point.loops == 2
            && run.point.rate.is_none()
            && run.repeat == 0
        {
            run.summary
                .histograms
                .insert("latency".into(), "not*base64".into());
        }
    }
    let out = tempfile::tempdir().unwrap();
    let rendered = render(&results, out.path()).unwrap();
    let spectrum_text = |stem: &str| {
        let plot = rendered
            .plots
            .iter()
            .find(|p| p.png.file_stem().unwrap() == stem)
            .unwrap_or_else(|| panic!("no plot {stem}"));
        common::svg_texts(&plot.svg).join("\n")
    };
    let one = spectrum_text("spectrum-raw-64-b-50-conns-l1");
    assert!(
        one.contains("ref-mio-echo: no histogram in the results"),
        "{one}"
    );
    assert!(one.contains("gev-echo (60k samples)"), "{one}");
    let two = spectrum_text("spectrum-raw-64-b-50-conns-l2");
    assert!(two.contains("gev-echo (40k samples)"), "{two}");
    assert!(
        rendered
            .notes
            .iter()
            .any(|n| n.contains("gev-echo at loops=2") && n.contains("leaves out run 1")),
        "{:?}",
        rendered.notes
    );
}

#[test]
fn bad_results_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join(RESULTS_FILE);
    let err = render_results_file(&missing, dir.path()).unwrap_err();
    assert!(matches!(err, ReportError::Results { .. }), "{err}");
    assert!(err.to_string().contains(RESULTS_FILE), "{err}");

    fs::write(&missing, "{ not json").unwrap();
    let err = render_results_file(&missing, dir.path()).unwrap_err();
    assert!(
        err.to_string().contains("not valid gev-harness JSON"),
        "{err}"
    );

    let mut results: Results = common::synthetic_results();
    results.schema = "gev-harness/0".into();
    fs::write(&missing, results.to_json()).unwrap();
    let err = render_results_file(&missing, dir.path()).unwrap_err();
    assert!(err.to_string().contains("gev-harness/0"), "{err}");
    assert!(!dir.path().join("index.html").exists());
}
