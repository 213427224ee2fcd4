#!/usr/bin/env bash
# Tests a cross build (cross/build.sh ARCH first) under qemu-user on this machine:
#
#   cross/test-qemu.sh ARCH        ARCH: arm64 or armhf (amd64 runs natively)
#
# 1. the unit tests of camrtc's library and of camrtc-untrusted, emulated;  2. `camrtc --version`;
# 3. `camrtc check-config` on the shipped config and on a broken one;  4. a WHEP session: the
# emulated daemon serves on loopback and the native client of tests/whep_session_subprocess.rs
# decodes its picture and tone.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO/cross/env.sh"
cross_env "${1:?usage: cross/test-qemu.sh arm64|armhf}"
cd "$REPO"
out=$(cross_out_dir)
bin=$out/camrtc
mapfile -t lib_tests <"$out/camrtc-lib-tests.path"
say() { printf 'cross-test %s: %s\n' "$DEB_ARCH" "$*"; }

for tests in "${lib_tests[@]}"; do
  say "unit tests of $(basename "${tests%-*}") under ${QEMU:-native}"
  cross_run "$tests" -q --test-threads=2
done

version=$(cross_run "$bin" --version)
[[ $version == "camrtc $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" ]] ||
  { say "unexpected --version output: $version"; exit 1; }
say "--version: $version"

cross_run "$bin" check-config config/camrtc.toml
bad=$(mktemp)
trap 'rm -f "$bad"' EXIT
printf '[video]\nwidth = 1281\n' >"$bad"
if message=$(cross_run "$bin" check-config "$bad" 2>&1); then
  say "check-config accepted an odd width"; exit 1
fi
grep -q 'video.width = 1281 must be even' <<<"$message" || { say "unexpected error: $message"; exit 1; }
say "check-config refuses a bad config: $(grep -m1 -o "video.width.*" <<<"$message")"

say "WHEP session: emulated daemon, native client"
# The client is a host build: not the cross target dir's CARGO_BUILD_TARGET.
CAMRTC_TEST_DAEMON="$QEMU $bin" cargo test --locked --test whep_session_subprocess -- --nocapture 2>&1 |
  grep -E '^(first frame|test |test result)' 
