#!/usr/bin/env bash
# The project's whole test run: what CI runs (.ci/run) and what a developer runs before pushing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

stage() { printf '\n==> %s\n' "$*"; }

stage "install dependencies"
scripts/install-deps.sh --test

stage "cargo fmt --all -- --check"
cargo fmt --all -- --check

stage "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

stage "cargo test --all-targets"
cargo test --all-targets

# ---- EXTRA STAGES -------------------------------------------------------------------------------
# Add further stages here (browser end-to-end via tests/browser/viewer.mjs, fuzz smoke runs, VM
# tests), each announced with `stage "..."` and failing the run on error (set -e). Keep a test
# runner's summary as the last thing printed: CI reads the closing lines to count tests.
# ---- END EXTRA STAGES ---------------------------------------------------------------------------
