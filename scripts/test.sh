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

stage "fuzz: every target for 30 s (scripts/fuzz.sh)"
scripts/fuzz.sh 30

stage "cross: arm64 + armhf release builds, tests under qemu-user, .deb packages (cross/ci.sh)"
cross/ci.sh

stage "cargo test --all-targets"
cargo test --all-targets

# New stages (VM tests, cross builds…) go above `cargo test`, each announced with `stage`, so that
# cargo's test summary stays the last thing printed: CI reads the closing lines to count tests.
