//! Property test: any report — odd names, NaN, infinities, zeros, negative or huge values,
//! missing histograms, empty series — plans, draws on both backends, and renders both pages
//! without panicking, and the HTML page prints every server name escaped.

use gev_reports::html;
use gev_reports::markdown;
use gev_reports::model::{
    Estimate, LatencyHistogram, LatencySummary, PointKey, PointSummary, Report, RunSeries,
    TimeSample,
};
use gev_reports::plot::{self};
use gev_reports::table::SummaryTable;
use hdrhistogram::Histogram;
use plotters::prelude::*;
use proptest::prelude::*;

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-1.0),
        Just(1e15),
        0.001f64..1e7,
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ref-tokio-echo".to_string()),
        Just("ref-mio-echo".to_string()),
        "[a-z<>|&\"' µ-]{0,12}",
    ]
}

fn histogram() -> impl Strategy<Value = LatencyHistogram> {
    prop_oneof![
        Just(LatencyHistogram::Missing),
        Just(LatencyHistogram::Invalid("bad <data>".into())),
        proptest::collection::vec(1u64..10_000_000_000, 0..50).prop_map(|values| {
            let mut h = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).unwrap();
            for v in values {
                h.saturating_record(v);
            }
            LatencyHistogram::Recorded(Box::new(h))
        }),
    ]
}

fn key() -> impl Strategy<Value = PointKey> {
    (
        name(),
        0u32..5,
        prop_oneof![Just("w".to_string()), "[ -~]{0,10}"],
        proptest::option::of(value()),
    )
        .prop_map(|(server, loops, workload, offered_rate)| PointKey {
            server,
            loops,
            workload,
            offered_rate,
        })
}

fn point() -> impl Strategy<Value = PointSummary> {
    (
        key(),
        value(),
        value(),
        value(),
        value(),
        value(),
        value(),
        histogram(),
    )
        .prop_map(
            |(key, median, low, high, p50, p99, p999, histogram)| PointSummary {
                key,
                throughput: Estimate { median, low, high },
                latency_us: LatencySummary { p50, p99, p999 },
                histogram,
                throughput_ratios: vec![(
                    "ref-mio-echo".into(),
                    Estimate {
                        median: low,
                        low: median,
                        high,
                    },
                )],
            },
        )
}

fn run() -> impl Strategy<Value = RunSeries> {
    (
        key(),
        0u32..3,
        proptest::collection::vec((value(), value(), value()), 0..6),
    )
        .prop_map(|(key, repeat, samples)| RunSeries {
            key,
            repeat,
            samples: samples
                .into_iter()
                .map(|(t_secs, rps, p99_us)| TimeSample {
                    t_secs,
                    rps,
                    p99_us,
                })
                .collect(),
        })
}

fn report() -> impl Strategy<Value = Report> {
    (
        proptest::collection::vec(point(), 0..6),
        proptest::collection::vec(run(), 0..4),
        proptest::collection::vec(name(), 0..3),
    )
        .prop_map(|(points, runs, servers)| Report {
            title: "<t>".into(),
            environment: vec![("cpu".into(), "<b>|x".into())],
            servers,
            points,
            runs,
            references: Vec::new(),
            notes: vec!["n <i>".into()],
            ..Report::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_report_draws_and_renders(report in report()) {
        gev_reports::font::ensure_registered().unwrap();
        for job in plot::plan(&report) {
            let mut pixels = vec![0u8; 480 * 300 * 3];
            {
                let root = BitMapBackend::with_buffer(&mut pixels, (480, 300)).into_drawing_area();
                job.draw(&root).unwrap();
            }
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (480, 300)).into_drawing_area();
                job.draw(&root).unwrap();
            }
            prop_assert!(roxmltree::Document::parse(&svg).is_ok(), "{}: bad svg", job.stem);
        }
        let table = SummaryTable::from_report(&report);
        prop_assert_eq!(table.rows.len(), report.points.len());
        let md = markdown::render(&report, &table, &[], std::path::Path::new("/out"));
        prop_assert!(md.contains("## Summary"));
        let page = html::render(&report, &table, &[]);
        for point in &report.points {
            let cell = format!("<td>{}</td>", html::escape(&point.key.server));
            prop_assert!(page.contains(&cell), "{} missing", cell);
        }
        prop_assert!(!page.contains("<b>") && !page.contains("<t>") && !page.contains("<i>"));
    }
}
