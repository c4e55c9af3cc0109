//! gev-harness: benchmark sweeps and regression comparisons of gev servers.
//!
//! Data path: sweep spec ([`spec`]) -> points and interleaved runs ([`sweep`]) -> one run =
//! server process + `loadgen --json` ([`runner`], cores placed by [`pinning`]) -> summaries
//! ([`summarize`] over [`stats`]) -> `reports/out/<timestamp>/` ([`output`]: results.json,
//! results.csv, env.txt) -> plots and pages (`gev_reports::render`). `harness compare`
//! ([`compare`]) runs a baseline and a candidate through the same [`runner`] (by default side by
//! side, both at once on the same cores, so the machine's drift cancels in the ratio) and gates
//! on the ratios. With a `[hosts]` table ([`hosts`]) the server runs on another host and loadgen
//! on one or more client hosts, over ssh, and their histograms are merged without loss. The
//! reference servers (`ref-tokio-echo`, `ref-mio-echo`, `ref-tokio-ws-echo`, ...) are
//! binaries of this crate, the tokio ones built on [`refserver`]; [`builtin`] names every server a
//! spec may use. A spec's `transports` (TCP, Unix sockets, UDP) are a point dimension: each server
//! runs as its variant for a transport ([`transport_run`]; `ref-tokio-unix-echo`,
//! `ref-tokio-udp-echo`, `gev-udp-echo`) under the same name.
//!
//! ```
//! use gev_harness::sweep;
//! use gev_harness::spec::{Context, Spec};
//!
//! // Built-in servers are looked up next to the harness binary; point at a directory holding
//! // stand-ins so this example needs no build.
//! let bin = tempfile::tempdir().unwrap();
//! for name in ["gev-echo", "ref-mio-echo"] {
//!     std::fs::write(bin.path().join(name), b"").unwrap();
//! }
//! let context = Context { bin_dir: bin.path().to_path_buf(), cores: 2 };
//! let spec = Spec::parse(
//!     "servers = [\"gev-echo\", \"ref-mio-echo\"]\nrepeats = 2",
//!     "example.toml",
//!     &[],
//!     &context,
//! )
//! .unwrap();
//! let points = sweep::points(&spec);
//! assert_eq!(points.len(), 2); // loops 1 and 2 (the default 1..=cores)
//! assert_eq!(sweep::schedule(&spec.servers, &spec.variants, &points, spec.repeats).len(), 8);
//! ```
//!
//! Dependencies: `gev-loadgen` (the typed summary loadgen prints), `gev-reports` (the results
//! types and the renderer), `clap` (flags), `serde`/`serde_json`/`toml` (spec and results),
//! `thiserror`/`anyhow` (errors), `indicatif` (progress), `libc` (signals, CPU affinity),
//! `humantime` (durations, timestamps), `rand` (bootstrap resampling), `statrs` (Student's t
//! distribution for the paired intervals, instead of a hand-written quantile), `signal-hook`,
//! `tokio`, `mio`, `socket2`, `tokio-tungstenite`, `futures-util` (the reference servers),
//! `core_affinity` (compare), `rustls`/`tokio-rustls` (the TLS reference server, ring provider
//! like gev and loadgen), `rcgen` (one throwaway certificate per TLS sweep), `hdrhistogram`
//! (adding the client hosts' histograms in [`hosts::merge`]), `tempfile` (also the ssh control
//! socket directory). Dev: `tempfile`,
//! `proptest`.

pub mod baseline;
pub mod builtin;
pub mod callgrind;
pub mod cli;
pub mod compare;
pub mod env;
pub mod framing;
pub mod hosts;
pub mod output;
pub mod pinning;
pub mod refserver;
pub mod runner;
pub mod soak;
pub mod spec;
pub mod stats;
pub mod summarize;
pub mod sweep;
pub mod tls_cert;
pub mod tls_run;
pub mod transport_run;
