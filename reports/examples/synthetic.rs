//! Render the synthetic sweep the end-to-end tests use into a directory, to look at the plots
//! without running a sweep: `cargo run -p gev-reports --example synthetic -- OUT_DIR`.

#[path = "../tests/common/mod.rs"]
mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: synthetic OUT_DIR (the directory to render the synthetic report into)")?;
    let rendered = gev_reports::render_report(&common::synthetic_report(), out.as_ref())?;
    println!(
        "{} plots, {} and {}",
        rendered.plots.len(),
        rendered.report_md.display(),
        rendered.index_html.display()
    );
    Ok(())
}
