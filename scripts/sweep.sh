#!/usr/bin/env bash
# The main job: build every binary in release mode, then run `harness sweep` (default spec
# sweeps/quick.toml, about 2 minutes on 2 cores). Extra arguments go to `harness sweep`, e.g.
# `scripts/sweep.sh sweeps/full.toml`. Results land in reports/out/<timestamp>/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins
exec target/release/harness sweep "$@"
