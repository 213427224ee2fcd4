#!/usr/bin/env bash
# Install what camrtc needs from Debian's packages, and nothing that is already there.
#
#   scripts/install-deps.sh          build dependencies (C toolchain for openh264/opus, ALSA headers)
#   scripts/install-deps.sh --test   also Chromium, Node.js, npm, systemd (systemd-analyze), ffmpeg, the
#                                    VM harness (qemu, Debian kernel, busybox, v4l-utils, alsa-utils;
#                                    the kernel's netem also shapes the bandwidth adaptation test's
#                                    weak link), coturn and iproute2 for the network-namespace TURN
#                                    test, nftables for the NAT tests' routers,
#                                    the browser harness's npm packages (tests/browser/node_modules)
#                                    and the arm64/armhf cross toolchains (cross/install-deps.sh)
#
# Idempotent: apt-get runs only when a package is missing, npm only when node_modules is missing or
# package-lock.json changed since the last install. Runs as root, or through sudo otherwise.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

with_test=0
for arg in "$@"; do
  case $arg in
    --test) with_test=1 ;;
    -h | --help) sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "install-deps: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

packages=(build-essential cmake nasm pkg-config libasound2-dev clang)
if ((with_test)); then
  packages+=(chromium nodejs npm systemd)
  # The real-driver VM tests (tests/vm/): a TCG guest running Debian's kernel with vivid and
  # snd-aloop, and the tools that drive those drivers from inside it.
  packages+=(qemu-system-x86 linux-image-amd64 busybox-static cpio v4l-utils alsa-utils)
  # ffmpeg (libx264) feeds the exec video source's end-to-end test.
  packages+=(ffmpeg)
  # tests/turn_relay.rs: a real TURN server (started by the test, never as a service) between
  # network namespaces made with `ip netns`.
  packages+=(coturn iproute2)
  # tests/stun_nat.rs and tests/nat_port_forward.rs: router namespaces that masquerade and forward.
  packages+=(nftables)
fi

# Installed means dpkg says so. Node.js and npm also count when their commands exist: the machine's
# Node.js may come from a package that bundles npm (and conflicts with Debian's npm package).
# Only this machine's architecture (or `all`) counts: once the cross stage has installed
# libasound2-dev:arm64 and :armhf, dpkg-query lists one status per architecture.
native_arch=$(dpkg --print-architecture)
is_installed() {
  local status
  status=$(dpkg-query -W -f='${Architecture} ${Status}\n' "$1" 2>/dev/null || true)
  grep -Eqx "($native_arch|all) install ok installed" <<<"$status" && return 0
  case $1 in
    nodejs) command -v node >/dev/null ;;
    npm) command -v npm >/dev/null ;;
    *) return 1 ;;
  esac
}

missing=()
for pkg in "${packages[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  as_root=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    as_root=(sudo)
  fi
  # One unreachable or stale index should not stop us; apt-get install decides if it matters.
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q || true
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: system packages present"
fi

if ((with_test)); then
  dir=$repo/tests/browser
  stamp=$dir/node_modules/.camrtc-lock.sha256
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [[ -d $dir/node_modules && -f $stamp && $(<"$stamp") == "$want" ]]; then
    echo "install-deps: tests/browser/node_modules up to date"
  else
    echo "install-deps: npm ci in tests/browser"
    # A throwaway npm cache: nothing is kept outside the repository.
    cache=$(mktemp -d)
    trap 'rm -rf "$cache"' EXIT
    (cd "$dir" && npm ci --no-audit --no-fund --cache "$cache")
    echo "$want" >"$stamp"
  fi
fi

if ((with_test)); then
  "$repo/cross/install-deps.sh" arm64 armhf
fi
