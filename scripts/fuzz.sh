#!/usr/bin/env bash
# Runs every fuzz target (cargo-fuzz, libFuzzer) for a bounded time, starting from the seeds in
# fuzz/seeds/<target>; what it learns goes to fuzz/corpus/<target> (git-ignored).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      default 30
#
# cargo-fuzz is installed into .cache/ inside the repository on first use. Its instrumentation
# flags are nightly-only, so RUSTC_BOOTSTRAP lets the machine's stable toolchain accept them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-30}
root=$PWD/.cache/cargo-fuzz
if [[ ! -x $root/bin/cargo-fuzz ]]; then
  echo "fuzz: installing cargo-fuzz into $root"
  # A debug build: cargo-fuzz only drives cargo, and compiles in half the time without optimisation.
  cargo install --quiet --locked --debug --root "$root" cargo-fuzz@0.13.2
fi
export PATH=$root/bin:$PATH RUSTC_BOOTSTRAP=1
# scripts/test.sh lints the host build with clippy-driver; the fuzz build is plain rustc.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in offer trickle config authorization; do
  mkdir -p "fuzz/corpus/$target"
  echo "fuzz: $target for ${seconds}s"
  if ! cargo fuzz run --sanitizer none --release "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" \
    -- -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $target FAILED (the crashing input is in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log" | sed "s/^/fuzz: $target /"
done
