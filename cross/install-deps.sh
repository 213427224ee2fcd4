#!/usr/bin/env bash
# Installs what cross builds need, and nothing that is already there:
#
#   cross/install-deps.sh [ARCH...]     ARCH: arm64, armhf (default: both)
#
# Debian's cross gcc/g++ (with their libc headers), the target's libstdc++ and ALSA -dev packages (multiarch), qemu-user to
# run the results, the Rust standard library for each target (rustup), and dpkg-dev + lintian for
# the packages. An `apt-get update` that fails for one architecture's index (a mirror mid-sync)
# does not stop us: apt-get install decides whether the lists we have are enough.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO/cross/env.sh"
arches=("$@")
((${#arches[@]})) || arches=(arm64 armhf)

as_root=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "cross: need root or sudo to install packages" >&2; exit 1; }
  as_root=(sudo)
fi

packages=(cmake clang libclang-dev pkg-config qemu-user dpkg-dev lintian file)
added_arch=0
for arch in "${arches[@]}"; do
  cross_env "$arch"
  [[ $arch == amd64 ]] && continue
  if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    "${as_root[@]}" dpkg --add-architecture "$arch"
    added_arch=1
  fi
  packages+=("gcc-$TRIPLET" "g++-$TRIPLET" "libstdc++6:$arch" "libasound2-dev:$arch")
done

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "cross: installing ${missing[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q || \
    echo "cross: apt-get update failed for some index; carrying on with the lists we have" >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
elif ((added_arch)); then
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q || true
else
  echo "cross: system packages present"
fi

for arch in "${arches[@]}"; do
  cross_env "$arch"
  if ! rustup target list --installed | grep -qx "$RUST_TARGET"; then
    echo "cross: adding the Rust standard library for $RUST_TARGET"
    rustup target add "$RUST_TARGET"
  fi
done
