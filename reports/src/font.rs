//! Fonts: registers the DejaVu Sans faces compiled into the binary (crate `dejavu`) with
//! plotters' `ab_glyph` text backend under the family names plotters asks for.
//!
//! Every plot draws text through this registration, so rendering needs no system fonts and no
//! fontconfig: the same PNG comes out on a bare CI container as on a desktop. Registration is
//! global inside plotters and done once per process, before the first plot is drawn.

use std::sync::OnceLock;

use plotters::style::{register_font, FontStyle};

use crate::error::ReportError;

/// The family name every plot uses for its text.
pub const FAMILY: &str = "sans-serif";

/// The families registered; plotters' `FontFamily::{SansSerif, Serif, Monospace}` map to these
/// names, so a stray default font request still finds a face instead of failing.
const FAMILIES: [&str; 3] = ["sans-serif", "serif", "monospace"];

static REGISTERED: OnceLock<Result<(), &'static str>> = OnceLock::new();

/// Register the embedded fonts (idempotent, thread-safe).
pub fn ensure_registered() -> Result<(), ReportError> {
    let outcome = REGISTERED.get_or_init(|| {
        let faces: [(FontStyle, &'static str, &'static [u8]); 3] = [
            (FontStyle::Normal, "regular", dejavu::sans::regular()),
            (FontStyle::Bold, "bold", dejavu::sans::bold()),
            (FontStyle::Oblique, "oblique", dejavu::sans::oblique()),
        ];
        for family in FAMILIES {
            for (style, name, bytes) in faces {
                register_font(family, style, bytes).map_err(|_| name)?;
            }
        }
        Ok(())
    });
    outcome.map_err(|style| ReportError::Font { style })
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::style::{FontDesc, FontFamily};

    #[test]
    fn registered_font_measures_text() {
        ensure_registered().unwrap();
        let font = FontDesc::new(FontFamily::SansSerif, 20.0, FontStyle::Normal);
        let (w, h) = font.box_size("99.9% µs").unwrap();
        assert!(w > 40 && h > 5, "text box {w}x{h}");
    }

    #[test]
    fn registration_is_idempotent() {
        ensure_registered().unwrap();
        ensure_registered().unwrap();
    }
}
