#!/usr/bin/env bash
# The deployment stage of scripts/test.sh: for arm64 and armhf, one release cross build each
# (shared by the .deb and the unit tests), the tests under qemu-user (cross/test-qemu.sh), the
# .deb (cross/build-deb.sh) and its inspection (cross/inspect-deb.sh). Prints each step's time
# and the sizes recorded in docs/PERFORMANCE.md.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO/cross/env.sh"
cd "$REPO"
# Codegen for CI's time budget, not for the device: without thin LTO and with 16 codegen units an
# armhf build takes 297 s wall / 513 CPU-s instead of 494 s / 827 CPU-s (docs/PERFORMANCE.md).
# The code, the tests under qemu and the packaging are the same; the packages that ship come from
# `cross/build-deb.sh`, run by hand with the release profile as Cargo.toml sets it.
export CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
stage_start=$SECONDS
"$REPO/cross/install-deps.sh" arm64 armhf
for arch in arm64 armhf; do
  cross_env "$arch"
  t=$SECONDS
  deb=$("$REPO/cross/build-deb.sh" "$arch")
  built=$((SECONDS - t))
  t=$SECONDS
  "$REPO/cross/test-qemu.sh" "$arch"
  tested=$((SECONDS - t))
  "$REPO/cross/inspect-deb.sh" "$deb" "$arch"
  bin=$(cross_out_dir)/camrtc
  echo "cross-ci: $arch: build + package ${built} s, qemu tests ${tested} s;" \
    "binary $(stat -c %s "$bin") bytes (stripped in the .deb: $(dpkg-deb --fsys-tarfile "$deb" |
      tar -xO ./usr/bin/camrtc | wc -c) bytes), .deb $(stat -c %s "$deb") bytes"
done
echo "cross-ci: whole stage $((SECONDS - stage_start)) s"
