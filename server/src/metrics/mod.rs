//! Prometheus metrics for the reactor (see docs/design.md).
