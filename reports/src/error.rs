//! The one error type of the reports crate: every way turning results into plots and pages can
//! fail, each variant naming the rule that was broken and the file involved.
//!
//! Missing data is *not* an error here: a plot whose data is absent (no histogram, no rates in the
//! spec, a single point) is still drawn and says on its face what is missing. Errors are reserved
//! for what stops a file from being written at all.

use std::path::PathBuf;

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The embedded DejaVu font was rejected by the glyph rasteriser (a build problem, not a
    /// data problem).
    #[error("the embedded DejaVu font {style} could not be registered with plotters")]
    Font {
        /// Which style (regular, bold, oblique) failed.
        style: &'static str,
    },
    /// Creating the output directory or writing a page failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A plotting backend failed while drawing or encoding a plot file.
    #[error("cannot draw {path}: {message}")]
    Draw {
        /// The PNG or SVG file being drawn.
        path: PathBuf,
        /// The backend's own description of the failure.
        message: String,
    },
    /// A results file could not be read or parsed.
    #[error("cannot read results {path}: {message}")]
    Results {
        /// The results.json involved.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
}

impl ReportError {
    /// Wrap an I/O error with the path it concerned.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.into(),
            source,
        }
    }
}
