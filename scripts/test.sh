#!/usr/bin/env bash
# The whole test suite, as a fresh machine runs it: installs the test peers (wrk, a Python
# virtualenv), builds every binary with the `fast` profile, then runs all tests with nextest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-deps.sh
cargo build --profile fast --workspace --bins
cargo nextest run --cargo-profile fast --workspace --no-fail-fast "$@"
