//! Live progress on stderr, once a second, only when stderr is a terminal (so logs and the
//! harness see nothing). It is fed the merged one-second intervals by the run's collector.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::summary::TimePoint;

/// The progress display (absent when stderr is not a terminal).
pub struct Monitor {
    bar: Option<ProgressBar>,
}

impl Monitor {
    /// `total_secs`: the measured duration of a timed run, for the bar's length.
    pub fn new(total_secs: Option<f64>, enabled: bool) -> Monitor {
        if !enabled || !std::io::stderr().is_terminal() {
            return Monitor { bar: None };
        }
        let bar = match total_secs {
            Some(secs) => {
                let bar = ProgressBar::new(secs.ceil() as u64);
                bar.set_style(
                    ProgressStyle::with_template("{bar:30} {pos}/{len}s {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar
            }
            None => {
                let bar = ProgressBar::new_spinner();
                bar.enable_steady_tick(Duration::from_millis(250));
                bar
            }
        };
        Monitor { bar: Some(bar) }
    }

    /// One more second measured.
    pub fn update(&self, point: &TimePoint, completed: u64, errors: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(point.t.round() as u64);
            bar.set_message(format!(
                "{:.0} req/s  p99 {}  done {completed}  errors {errors}",
                point.rps,
                crate::printer::format_us(point.p99_us)
            ));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
