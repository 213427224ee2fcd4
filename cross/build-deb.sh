#!/usr/bin/env bash
# Builds the Debian package for one architecture, from nothing but this repository:
#
#   cross/build-deb.sh ARCH [CARGO_ARGS...]    ARCH: amd64, arm64 or armhf
#   e.g. cross/build-deb.sh arm64 --no-default-features --features cisco-openh264
#
# Builds the release binary (cross/build.sh), then packages it with cargo-deb: /usr/bin/camrtc,
# the systemd unit (enabled and started on install), /etc/camrtc/camrtc.toml as a conffile, the
# `camrtc` system user (debian/postinst) and a purge that removes them all (debian/postrm).
# cargo-deb is installed into .cache/ in the repository on first use (cross/cargo-deb.sh). Prints
# the .deb's path.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO/cross/env.sh"
cross_env "${1:?usage: cross/build-deb.sh amd64|arm64|armhf [cargo args]}"
shift
cd "$REPO"
"$REPO/cross/build.sh" "$DEB_ARCH" "$@" >&2

out=$(cross_out_dir)
log=$("$REPO/cross/cargo-deb.sh" --no-build --strip --target "$RUST_TARGET" --output "$(dirname "$out")/debian/" 2>&1) ||
  { echo "$log" >&2; echo "cross: cargo-deb failed" >&2; exit 1; }
deb=$(tail -1 <<<"$log")
[[ -f $deb ]] || { echo "$log" >&2; echo "cross: cargo-deb wrote no package" >&2; exit 1; }
echo "$deb"
