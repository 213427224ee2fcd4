#!/usr/bin/env bash
# Runs the repository's pinned cargo-deb with the given arguments, installing it into .cache/ in
# the repository on first use (its own target dir: the project's must not fill up with its build).
#
#   cross/cargo-deb.sh --no-build --strip --target aarch64-unknown-linux-gnu …
#
# Used by cross/build-deb.sh and by tests/vm_systemd_service.rs (which packages its own binary).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=$REPO/.cache/cargo-deb
if [[ ! -x $root/bin/cargo-deb ]]; then
  echo "cross: installing cargo-deb into $root" >&2
  CARGO_TARGET_DIR=$root/target cargo install --quiet --locked --root "$root" cargo-deb@3.8.0 >&2
  rm -rf "$root/target"
fi
cd "$REPO"
exec "$root/bin/cargo-deb" "$@"
