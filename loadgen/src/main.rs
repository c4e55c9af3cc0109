//! `loadgen TARGET [options]`: parse arguments, raise the open-file limit, check the target
//! answers, run, print. Every failure before the run is one line on stderr and exit code 2
//! (bad arguments) or 1 (environment: unreachable target, descriptor limit); a run that
//! completes exits 0 whatever the server did, with its errors counted in the summary.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;
use gev_loadgen::cli::Args;
use gev_loadgen::sys::{raise_nofile, NofileOutcome};
use gev_loadgen::{printer, run};

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("loadgen: error: {message}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // clap's first line names the flag; the usage block after it is left out so the
            // error stays one line.
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            return fail(2, format!("{first} (see loadgen --help)"));
        }
    };
    let mut config = match args.into_config() {
        Ok(config) => config,
        Err(e) => return fail(2, e),
    };
    match raise_nofile(config.descriptors_needed()) {
        Ok(NofileOutcome::Raised { from, to }) => {
            eprintln!("loadgen: raised the open-file limit from {from} to {to} for -c {}", config.connections);
        }
        Ok(_) => {}
        Err(e) => {
            return fail(
                1,
                format!(
                    "{e} for -c {}: raise the hard limit (ulimit -Hn, or LimitNOFILE for a service) or lower -c",
                    config.connections
                ),
            )
        }
    }
    if let Err(e) = run::probe(&mut config) {
        return fail(1, e);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            return fail(1, format!("cannot install the signal handler: {e}"));
        }
    }
    let json = config.json;
    // Progress goes to stderr only when it is a terminal, so it never mixes with --json.
    let summary = match run::run(config, stop, true) {
        Ok(summary) => summary,
        Err(e) => return fail(1, e),
    };
    // A closed stdout (e.g. piped into `head`) is not worth a panic; the run is over anyway.
    let text = if json {
        format!("{}\n", summary.to_json())
    } else {
        printer::human(&summary)
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    ExitCode::SUCCESS
}
