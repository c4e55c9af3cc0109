//! From a server's soak record to its figure: the series of soak.json become the panels of a
//! `gev_reports::plot::soak::SoakPlot` (RSS, CPU, descriptors, connections, well-behaved p99
//! and throughput), drawn as `soak-<server>.png` and `.svg`.
//!
//! Where it sits: record (`record.rs`) -> **render** -> reports' soak plot. Reads only the
//! record, so `harness soak` can redraw from a soak.json alone.

use std::path::{Path, PathBuf};

use gev_reports::plot::slugify;
use gev_reports::plot::soak::{SoakPanel, SoakPlot, SoakSeries};

use super::record::ServerSoak;

fn series(label: &str, points: Vec<(f64, f64)>) -> SoakSeries {
    SoakSeries {
        label: label.into(),
        points,
    }
}

fn panel(y_desc: &str, series: Vec<SoakSeries>) -> SoakPanel {
    SoakPanel {
        y_desc: y_desc.into(),
        series,
        ..SoakPanel::default()
    }
}

/// The figure of one server.
pub fn plot(server: &ServerSoak) -> SoakPlot {
    let s = &server.samples;
    let pick = |f: fn(&super::sampler::Sample) -> f64| s.iter().map(|x| (x.t_secs, f(x))).collect();
    let mut connections = vec![
        series("TCP connections", pick(|x| x.connections as f64)),
        series("of which CLOSE_WAIT", pick(|x| x.close_wait as f64)),
    ];
    if s.iter().any(|x| x.metrics_connections.is_some()) {
        connections.push(series(
            "gev_connections_open",
            s.iter()
                .filter_map(|x| x.metrics_connections.map(|v| (x.t_secs, v)))
                .collect(),
        ));
    }
    let load = &server.well_behaved;
    let p = server.phases;
    SoakPlot {
        title: format!(
            "{} soak · {}",
            server.name,
            if server.verdict.pass { "pass" } else { "FAIL" }
        ),
        phase_marks: vec![
            (p.clean_end, "mixed".into()),
            (p.mixed_end, "alone".into()),
            (p.alone_end, "recovery".into()),
        ],
        end_secs: p.end,
        panels: vec![
            panel("RSS (MiB)", vec![series("RSS", pick(|x| x.rss_mib))]),
            panel(
                "CPU (% of a core)",
                vec![series("CPU", pick(|x| x.cpu_percent))],
            ),
            panel(
                "descriptors",
                vec![
                    series("open fds", pick(|x| x.fds as f64)),
                    series(
                        "idle baseline",
                        vec![
                            (0.0, server.baseline_fds as f64),
                            (p.end, server.baseline_fds as f64),
                        ],
                    ),
                ],
            ),
            panel("connections", connections),
            SoakPanel {
                y_desc: "well-behaved p99".into(),
                log: true,
                micros: true,
                series: vec![series(
                    "p99 per second",
                    load.iter().map(|x| (x.t_secs, x.p99_us)).collect(),
                )],
            },
            panel(
                "well-behaved req/s",
                vec![series(
                    "throughput",
                    load.iter().map(|x| (x.t_secs, x.rps)).collect(),
                )],
            ),
        ],
    }
}

/// Draw every server's figure into `dir`; returns the PNG paths.
pub fn render_all(
    servers: &[ServerSoak],
    dir: &Path,
) -> Result<Vec<PathBuf>, gev_reports::ReportError> {
    let mut written = Vec::new();
    for server in servers {
        let stem = format!("soak-{}", slugify(&server.name));
        let (png, _svg) = plot(server).render_files(dir, &stem)?;
        written.push(png);
    }
    Ok(written)
}
