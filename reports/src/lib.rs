//! gev-reports: turns the harness's `results.json` into plots (PNG and SVG), `report.md` and a
//! self-contained `index.html`.
//!
//! The harness calls [`render()`] with the [`Results`] it just wrote, and `harness report DIR`
//! calls [`render_results_file`] on `DIR/results.json`.
//!
//! Data path: harness sweep -> runs -> `results.json` ([`results`]) -> [`from_results`] (with
//! [`from_loadgen`] and [`hdr`] for each run's loadgen summary) -> [`model::Report`] (plain
//! data) -> [`plot`] jobs drawn in parallel by [`render`](mod@render) -> pages ([`verdict`]
//! first, then [`table`], in [`markdown`] and [`html`]). Figures a server's own metrics give
//! (a gev UDP server's datagrams per syscall) are read from the scrapes results.json keeps, by
//! [`prometheus`]. Everything is drawn from the plain [`model::Report`], so a report can
//! be re-rendered from `results.json` alone, and tests can feed degenerate data (one point, zero
//! throughput, no histograms) straight in.
//!
//! ```
//! use gev_reports::model::{Estimate, LatencyHistogram, LatencySummary, PointKey, PointSummary, Report};
//!
//! let report = Report {
//!     title: "example".into(),
//!     points: vec![PointSummary {
//!         key: PointKey { server: "gev-echo".into(), loops: 1, workload: "raw 64 B".into(), offered_rate: None },
//!         throughput: Estimate { median: 50_000.0, low: 48_000.0, high: 51_000.0 },
//!         latency_us: LatencySummary { p50: 40.0, p99: 120.0, p999: 300.0 },
//!         histogram: LatencyHistogram::Missing,
//!         throughput_ratios: Vec::new(),
//!     }],
//!     ..Report::default()
//! };
//! let out = tempfile::tempdir().unwrap();
//! let rendered = gev_reports::render_report(&report, out.path()).unwrap();
//! assert!(rendered.index_html.exists());
//! assert!(rendered.plots.iter().all(|p| p.png.exists() && p.svg.exists()));
//! ```
//!
//! Dependencies: `plotters` draws the plots (bitmap and SVG backends, `ab_glyph` text so no
//! system font is needed), `dejavu` embeds the font it draws with, `rayon` draws plots in
//! parallel, `hdrhistogram` and `base64` decode the load generator's latency histograms,
//! `gev-loadgen` provides the typed load-generator summary the results embed, `serde`/`serde_json`
//! read results, `thiserror` types the errors. Dev-only: `png` decodes the rendered PNGs and
//! `roxmltree` parses the SVGs in the end-to-end tests, `proptest` drives the decoder property
//! tests, `tempfile` gives tests an output directory.

pub mod error;
pub mod font;
pub mod from_loadgen;
pub mod from_results;
pub mod hdr;
pub mod hosts;
pub mod html;
pub mod markdown;
pub mod model;
pub mod plot;
pub mod prometheus;
pub mod render;
pub mod results;
pub mod table;
pub mod verdict;

pub use error::ReportError;
pub use render::{render, render_report, render_results_file, Rendered, RESULTS_FILE};
pub use results::Results;
