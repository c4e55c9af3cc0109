//! gev: a reactor server library (work in progress; see docs/design.md).
pub mod metrics;
pub mod ws;
