//! End to end: `harness sweep` on a tiny spec (two servers plus one from `--server-cmd`, two
//! loop counts, 1 s points) over real processes, alternating and side by side, then `harness
//! report` re-rendering from results.json alone, and bad specs rejected with one clear line
//! before anything runs. The cost figures (server and generator CPU per request, their ratios)
//! and the verdict lines are checked to exist and to agree with each other and with the data;
//! no test asserts a value a run this small could not guarantee (which server is cheaper, what
//! limited it): those depend on the machine.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use gev_reports::results::{Limit, PointSummary, Results};

/// Long enough for 6 one-second runs plus start-up checks and rendering on a loaded machine.
const SWEEP_LIMIT: Duration = Duration::from_secs(120);

const TINY_SPEC: &str = r#"
servers = ["gev-echo", "ref-mio-echo"]
loops = [1, 2]
connections = [4]
payload_sizes = [32]
duration = "1s"
warmup = "200ms"
repeats = 1
metrics = ["gev-echo"]
"#;

/// Every file under `plots/`, each checked to be a decodable PNG or a well-formed SVG.
fn check_plots(dir: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir.join("plots")).expect("plots/ exists") {
        let path = entry.expect("readable entry").path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(&path).expect("plot readable");
        match path.extension().and_then(|e| e.to_str()) {
            Some("png") => {
                let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
                let mut reader = decoder
                    .read_info()
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                let mut pixels = vec![0; reader.output_buffer_size()];
                let frame = reader
                    .next_frame(&mut pixels)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(frame.width > 0 && frame.height > 0, "{name} is empty");
            }
            Some("svg") => {
                let text = String::from_utf8(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                let document =
                    roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(document.root_element().tag_name().name(), "svg", "{name}");
            }
            _ => panic!("unexpected file in plots/: {name}"),
        }
        names.insert(name);
    }
    assert!(
        names.iter().any(|n| n.ends_with(".png")) && names.iter().any(|n| n.ends_with(".svg")),
        "no plots rendered: {names:?}"
    );
    names
}

/// The words the verdict uses for a limit (see `gev_reports::verdict`).
fn limit_words(limit: Limit) -> &'static str {
    match limit {
        Limit::Server => "throughput was limited by the server",
        Limit::Generator => "throughput was limited by the generator",
        Limit::Both => "throughput was limited by both the server and the generator",
        Limit::Neither => "neither the server nor the generator was saturated",
    }
}

/// Cost figures in every summary, consistent with the runs, and with the verdict lines printed
/// first on stdout and at the top of report.md and index.html; the CSV carries the same.
fn check_costs_and_verdicts(results: &Results, stdout: &str, dir: &Path, subject: &str) {
    for summary in &results.summaries {
        let cpu = summary
            .server_cpu_us_per_request
            .unwrap_or_else(|| panic!("{} has no server CPU per request", summary.server));
        assert!(cpu.low <= cpu.median && cpu.median <= cpu.high && cpu.median > 0.0);
        let generator = summary
            .generator_cpu_us_per_request
            .unwrap_or_else(|| panic!("{} has no generator CPU per request", summary.server));
        assert!(generator.median > 0.0 && generator.low <= generator.high);
        // The median over runs is one of the runs' own figures (odd counts) or between two.
        let per_run: Vec<f64> = results
            .runs_of(&summary.server, &summary.point)
            .map(|run| run.server_cpu_us_per_request().expect("run cost"))
            .collect();
        let (least, most) = per_run
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, m), v| (l.min(*v), m.max(*v)));
        // (serde_json's float parsing may differ from the written value in the last bit.)
        let slack = 1e-9 * most;
        assert!(
            least - slack <= cpu.median && cpu.median <= most + slack,
            "{per_run:?} {cpu:?}"
        );
        let limit = summary.limit.expect("a limit reading");
        assert!(limit.server_utilisation >= 0.0 && limit.generator_utilisation >= 0.0);
        assert_eq!(
            limit.limit,
            Limit::from_utilisation(limit.server_utilisation, limit.generator_utilisation)
        );
        for ratio in &summary.ratios {
            let cost_ratio = ratio
                .server_cpu_per_request
                .expect("a server CPU ratio to the reference");
            assert!(cost_ratio.low <= cost_ratio.median && cost_ratio.median <= cost_ratio.high);
        }
    }

    // One verdict line per load and loop count, first on stdout, naming the cost ratio of the
    // subject with the same figures as results.json and the limit it read.
    let verdicts = gev_reports::verdict::verdict_lines(results);
    assert_eq!(verdicts.len(), results.spec.loops.len(), "{verdicts:?}");
    let first_lines: Vec<&str> = stdout.lines().take(verdicts.len()).collect();
    assert_eq!(first_lines, verdicts, "stdout:\n{stdout}");
    for (line, loops) in verdicts.iter().zip(&results.spec.loops) {
        let summary: &PointSummary = results
            .summaries
            .iter()
            .find(|s| s.server == subject && s.point.loops == *loops)
            .expect("subject summary");
        let ratio = summary.ratios[0]
            .server_cpu_per_request
            .expect("cost ratio");
        let expected = format!(
            "{subject} needs {:.2}× ({:.2}–{:.2}) the CPU per request of {}",
            ratio.median, ratio.low, ratio.high, summary.ratios[0].reference
        );
        assert!(line.starts_with(&format!("loops={loops} ")), "{line}");
        assert!(line.contains(&expected), "{line} lacks {expected}");
        let limits: BTreeSet<&str> = results
            .summaries
            .iter()
            .filter(|s| s.point.loops == *loops)
            .map(|s| limit_words(s.limit.expect("limit").limit))
            .collect();
        if limits.len() == 1 {
            let words = limits.iter().next().expect("one limit");
            assert!(line.contains(words), "{line} lacks {words}");
        } else {
            assert!(line.contains("what limited throughput differed"), "{line}");
        }
    }
    let markdown = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    let verdict_at = markdown
        .find("## Verdict")
        .expect("report.md has a verdict");
    assert!(verdict_at < markdown.find("## Environment").expect("environment"));
    assert!(verdicts
        .iter()
        .all(|line| markdown.contains(&format!("- {line}"))));
    let html = std::fs::read_to_string(dir.join("index.html")).expect("index.html");
    let verdict_at = html
        .find("<h2>Verdict</h2>")
        .expect("index.html has a verdict");
    assert!(verdict_at < html.find("<h2>Environment</h2>").expect("environment"));

    // At most one note line per kind on stdout.
    let notes: Vec<&str> = stdout.lines().filter(|l| l.starts_with("note: ")).collect();
    let busy = notes
        .iter()
        .filter(|l| l.contains("generator thread") && l.contains("was busy"))
        .count();
    assert!(busy <= 1, "{notes:?}");

    // results.csv carries the cost columns with the JSON's figures.
    let csv = std::fs::read_to_string(dir.join("results.csv")).expect("results.csv");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column in {header:?}"))
    };
    let median = column("server_cpu_us_per_request_median");
    let generator = column("generator_cpu_us_per_request_median");
    let limit = column("limit");
    let ratio = column("server_cpu_ratio_to_ref-mio-echo");
    for (row, summary) in lines.zip(&results.summaries) {
        let cells: Vec<&str> = row.split(',').collect();
        let number = |i: usize| cells[i].parse::<f64>().expect("a number");
        let cpu = summary.server_cpu_us_per_request.expect("cost");
        assert!(
            (number(median) - cpu.median).abs() <= 1e-9 * cpu.median,
            "{row}"
        );
        let gen = summary
            .generator_cpu_us_per_request
            .expect("generator cost");
        assert!(
            (number(generator) - gen.median).abs() <= 1e-9 * gen.median,
            "{row}"
        );
        assert!(["server", "generator", "both", "neither"].contains(&cells[limit]));
        if summary.server == "ref-mio-echo" {
            assert_eq!(cells[ratio], "", "{row}");
        } else {
            assert!(number(ratio) > 0.0, "{row}");
        }
    }
}

#[test]
fn tiny_sweep_writes_results_csv_env_and_plots_and_report_rerenders() {
    let work = tempfile::tempdir().expect("temp dir");
    // A third server from the command line, exercising `--server-cmd NAME=CMD`.
    let tokio = format!(
        "tokio={} --host 127.0.0.1 --port {{port}} --workers {{loops}}",
        common::binary("ref-tokio-echo").display()
    );
    // results.json parses back into the types, with every run and summary.
    let common::Swept { run, results, dir } = common::sweep(
        work.path(),
        ("tiny.toml", TINY_SPEC),
        &["--server-cmd", &tokio],
        SWEEP_LIMIT,
        &common::SWEEP_BINARIES,
    );
    assert_eq!(
        results.runs.len(),
        6,
        "3 servers x 2 loop counts x 1 repeat"
    );
    assert!(results.failures.is_empty(), "{:?}", results.failures);
    assert_eq!(results.summaries.len(), 6);
    assert!(results
        .spec
        .servers
        .iter()
        .any(|s| s.name == "tokio" && !s.reference));
    assert_eq!(results.spec.loops, vec![1, 2]);
    assert!(results.environment.cores >= 1);
    assert!(!results.environment.pinning.is_empty());
    for run in &results.runs {
        common::assert_stopped_cleanly(run);
        assert!(
            run.summary.throughput.rps > 0.0,
            "{} measured nothing",
            run.server
        );
        assert_eq!(run.summary.config.connections, 4);
        assert_eq!(run.summary.config.size_min, 32);
        if run.server == "gev-echo" {
            let before = run
                .metrics_before
                .as_deref()
                .expect("gev-echo scraped before");
            let after = run
                .metrics_after
                .as_deref()
                .expect("gev-echo scraped after");
            assert!(before.contains("# TYPE") && after.contains("# TYPE"));
        } else {
            assert!(run.metrics_before.is_none());
        }
    }
    // Servers alternate within every point: A B C A B C.
    let order: Vec<&str> = results.runs.iter().map(|r| r.server.as_str()).collect();
    assert_eq!(
        order,
        [
            "gev-echo",
            "ref-mio-echo",
            "tokio",
            "gev-echo",
            "ref-mio-echo",
            "tokio"
        ]
    );
    for summary in &results.summaries {
        let t = &summary.throughput_rps;
        assert!(t.low <= t.median && t.median <= t.high && t.median > 0.0);
        if summary.server != "ref-mio-echo" {
            assert_eq!(summary.ratios.len(), 1);
            assert_eq!(summary.ratios[0].reference, "ref-mio-echo");
            assert!(summary.ratios[0].throughput.median > 0.0);
        }
    }

    // results.csv: a header and one row per summarised point.
    let csv = std::fs::read_to_string(dir.join("results.csv")).expect("results.csv");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 1 + results.summaries.len(), "{csv}");
    assert!(rows[0].starts_with("server,loops,"));
    assert!(rows[0].contains("ratio_to_ref-mio-echo"));
    let columns = rows[0].split(',').count();
    assert!(
        rows.iter().all(|row| row.split(',').count() == columns),
        "{csv}"
    );

    let env = std::fs::read_to_string(dir.join("env.txt")).expect("env.txt");
    for key in [
        "cpu:",
        "cores:",
        "kernel:",
        "rustc:",
        "git commit:",
        "pinning:",
    ] {
        assert!(env.contains(key), "env.txt lacks {key}: {env}");
    }
    assert!(dir.join("report.md").is_file() && dir.join("index.html").is_file());
    let plots = check_plots(&dir);

    // The stdout table names every server and the output directory.
    assert!(run.stdout.contains("gev-echo") && run.stdout.contains("ref-mio-echo"));
    assert_eq!(results.spec.schedule.as_deref(), Some("alternating"));
    check_costs_and_verdicts(&results, &run.stdout, &dir, "gev-echo");
    assert!(
        plots.iter().any(|p| p.starts_with("server-cost-")),
        "no server CPU per request plot: {plots:?}"
    );
    assert!(run.stdout.contains(&dir.display().to_string()));

    // `harness report DIR` re-renders the same plots from results.json alone.
    std::fs::remove_dir_all(dir.join("plots")).expect("plots removed");
    std::fs::remove_file(dir.join("index.html")).expect("index removed");
    let dir_arg = dir.to_string_lossy().into_owned();
    let report = common::harness(&["report", &dir_arg], work.path(), Duration::from_secs(60));
    assert!(report.status.success(), "report failed: {}", report.stderr);
    assert_eq!(check_plots(&dir), plots);
    assert!(dir.join("index.html").is_file());
}

#[test]
fn side_by_side_sweep_runs_every_server_of_a_point_at_once_and_says_so() {
    let work = tempfile::tempdir().expect("temp dir");
    let spec = TINY_SPEC
        .replace("repeats = 1", "repeats = 2")
        .replace("metrics = [\"gev-echo\"]", "schedule = \"alternating\"");
    // The flag overrides the spec's `schedule`.
    let common::Swept { run, results, dir } = common::sweep(
        work.path(),
        ("tiny.toml", &spec),
        &["--schedule", "side-by-side"],
        SWEEP_LIMIT,
        &common::SWEEP_BINARIES,
    );
    assert_eq!(results.spec.schedule.as_deref(), Some("side-by-side"));
    assert_eq!(
        results.runs.len(),
        2 * 2 * 2,
        "2 servers x 2 loop counts x 2 repeats"
    );
    // Each group ran both servers; the start order rotates from one repeat to the next.
    let order: Vec<(&str, u32)> = results
        .runs
        .iter()
        .map(|r| (r.server.as_str(), r.repeat))
        .collect();
    assert_eq!(
        &order[..4],
        [
            ("gev-echo", 0),
            ("ref-mio-echo", 0),
            ("ref-mio-echo", 1),
            ("gev-echo", 1)
        ]
    );
    // Side by side, both servers of a group share one reading of the server cores.
    for pair in results.summaries.chunks(2) {
        assert_eq!(
            pair[0].limit.map(|l| l.server_utilisation),
            pair[1].limit.map(|l| l.server_utilisation)
        );
    }
    check_costs_and_verdicts(&results, &run.stdout, &dir, "gev-echo");
    let markdown = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    assert!(markdown.contains("Schedule: side by side."), "{markdown}");
    assert!(markdown.contains("not what it does alone"), "{markdown}");
}

/// Runs a sweep that must be rejected; returns its one-line error.
fn rejected(spec_text: &str, extra: &[&str]) -> String {
    let work = tempfile::tempdir().expect("temp dir");
    let spec = work.path().join("bad.toml");
    std::fs::write(&spec, spec_text).expect("spec written");
    let out = work.path().join("out");
    let spec_arg = spec.to_string_lossy().into_owned();
    let out_arg = out.to_string_lossy().into_owned();
    let mut args = vec!["sweep", spec_arg.as_str(), "--out", out_arg.as_str()];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let run = common::harness(&args, work.path(), Duration::from_secs(60));
    assert_eq!(run.status.code(), Some(2), "{spec_text:?}: {}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "rejection took {:?}",
        started.elapsed()
    );
    assert!(!out.exists(), "a rejected sweep left an output directory");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got {:?}", run.stderr);
    assert!(
        lines[0].starts_with("harness sweep: error: "),
        "{}",
        lines[0]
    );
    lines[0].to_string()
}

#[test]
fn bad_specs_are_one_line_and_exit_2_before_anything_runs() {
    let cases: [(&str, &[&str], &str); 6] = [
        (
            "servers = [\"gev-echo\"]\nconections = [4]",
            &[],
            "bad.toml:2: unknown field `conections`",
        ),
        ("servers = [\"gev-echo\"]\nloops = []", &[], "`loops` is empty"),
        ("servers = [\"gnet\"]", &[], "unknown server \"gnet\""),
        (
            "servers = [\"gev-echo\"]",
            &["--server-cmd", "mine=/nonexistent/server --port {port}"],
            "binary /nonexistent/server not found",
        ),
        // A server that exits without ever opening its port fails the start-up check.
        (
            "servers = [\"gev-echo\"]\n[[command]]\nname = \"silent\"\ncommand = \"sh -c exit {port}\"",
            &[],
            "server \"silent\" failed its start-up check",
        ),
        ("servers = [\"gev-echo\"]\nduration = \"soon\"", &[], "not a duration"),
    ];
    for (spec, extra, expected) in cases {
        let line = rejected(spec, extra);
        assert!(line.contains(expected), "{spec:?}: {line}");
    }
}

#[test]
fn a_missing_spec_file_is_named() {
    let work = tempfile::tempdir().expect("temp dir");
    let run = common::harness(
        &["sweep", "no-such-spec.toml"],
        work.path(),
        Duration::from_secs(30),
    );
    assert_eq!(run.status.code(), Some(2));
    assert!(
        run.stderr
            .contains("cannot read sweep spec no-such-spec.toml"),
        "{}",
        run.stderr
    );
}

#[test]
fn report_on_a_directory_without_results_fails_clearly() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().to_string_lossy().into_owned();
    let run = common::harness(&["report", &dir], work.path(), Duration::from_secs(30));
    assert_eq!(run.status.code(), Some(2));
    assert!(run.stderr.contains("results.json"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}
