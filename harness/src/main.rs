//! The `harness` binary (work in progress).
fn main() {}
