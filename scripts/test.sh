#!/usr/bin/env bash
# The project's whole test run: what CI runs (.ci/run) and what a developer runs before pushing.
#
# CI has two cores. Every stage compiles, and each leaves one core idle for stretches (linking,
# LTO, the last crate, libFuzzer's single-threaded runs), so the cross stage — the longest, and
# independent of the others (its own build directories) — runs in the background alongside
# clippy and fuzzing. Its output is printed in one piece when it ends.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=$SECONDS
stage() { printf '\n==> [%4d s] %s\n' "$((SECONDS - started))" "$*"; }

stage "install dependencies"
scripts/install-deps.sh --test

stage "cargo fmt --all -- --check"
cargo fmt --all -- --check

# Clippy lints this package's own crates while they are compiled for the tests: cargo sets
# RUSTC_WORKSPACE_WRAPPER to clippy-driver for `cargo clippy` itself, and clippy-driver compiles as
# rustc does. `cargo clippy --all-targets -- -D warnings` would check all ~360 dependencies a second
# time (about 3 minutes of CI on this 2-core machine, docs/PERFORMANCE.md). The cross builds unset it
# (cross/build.sh); every host cargo run below shares these settings, so none rebuilds another's
# crates.
RUSTC_WORKSPACE_WRAPPER=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver) ||
  { echo "clippy-driver not found: rustup component add clippy" >&2; exit 1; }
export RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

mkdir -p target
cross_log=target/cross-stage.log
stage "cross: arm64 + armhf release builds, tests under qemu-user, .deb packages (cross/ci.sh," \
  "in the background, log in $cross_log)"
cross/ci.sh >"$cross_log" 2>&1 &
cross_pid=$!
# Never leave it running when a foreground stage fails.
trap 'kill "$cross_pid" 2>/dev/null || true' EXIT

stage "clippy -D warnings, as the compiler of the test build (cargo test --workspace --all-targets --no-run)"
cargo test --workspace --all-targets --no-run

stage "fuzz: every target for 20 s (scripts/fuzz.sh)"
scripts/fuzz.sh 20

stage "cross: waiting for the background stage"
if wait "$cross_pid"; then
  cat "$cross_log"
else
  cat "$cross_log"
  echo "cross stage FAILED (log above, also in $cross_log)" >&2
  exit 1
fi
trap - EXIT

stage "cargo test --workspace --all-targets"
cargo test --workspace --all-targets

# New stages (VM tests, cross builds…) go above `cargo test`, each announced with `stage`, so that
# cargo's test summary stays the last thing printed: CI reads the closing lines to count tests.
