#!/usr/bin/env bash
# Checks a camrtc .deb without installing it:
#
#   cross/inspect-deb.sh PACKAGE.deb ARCH
#
# control fields, the file list (binary for the right machine, unit, conffile, docs), the
# maintainer scripts (user creation, unit enabled and started, purge), then lintian.
set -euo pipefail
deb=${1:?usage: cross/inspect-deb.sh PACKAGE.deb amd64|arm64|armhf}
arch=${2:?usage: cross/inspect-deb.sh PACKAGE.deb amd64|arm64|armhf}
fail() { echo "inspect-deb: $deb: $*" >&2; exit 1; }
say() { echo "inspect-deb: $arch: $*"; }

info=$(dpkg-deb -I "$deb")
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == camrtc ]] || fail "Package is $(field Package)"
[[ $(field Architecture) == "$arch" ]] || fail "Architecture is $(field Architecture), not $arch"
depends=$(field Depends)
for dep in adduser 'libc6 (>= 2.34)' libasound2; do
  [[ $depends == *"$dep"* ]] || fail "Depends lacks $dep: $depends"
done
say "Depends: $depends"

files=$(dpkg-deb -c "$deb" | awk '{print $1, $NF}')
for want in '-rwxr-xr-x ./usr/bin/camrtc' '-rw-r----- ./etc/camrtc/camrtc.toml' \
  'camrtc.service' './usr/share/doc/camrtc/copyright' './usr/share/doc/camrtc/README.md'; do
  grep -qF -- "$want" <<<"$files" || fail "no '$want' in: $files"
done
unit=$(grep -o '\./[^ ]*systemd/system/camrtc.service' <<<"$files") || fail "unit not under systemd/system"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/root"
dpkg-deb -e "$deb" "$work/control"
machine=$(file -b "$work/root/usr/bin/camrtc")
case $arch in
  amd64) want='x86-64' ;; arm64) want='ARM aarch64' ;; armhf) want='ARM, EABI5' ;;
esac
[[ $machine == *"$want"* ]] || fail "binary is '$machine', expected $want"
[[ $machine == *stripped* && $machine != *"not stripped"* ]] || fail "binary not stripped: $machine"
cmp -s "$work/root/$unit" "$(dirname "${BASH_SOURCE[0]}")/../systemd/camrtc.service" ||
  fail "packaged unit differs from systemd/camrtc.service"
grep -qx /etc/camrtc/camrtc.toml "$work/control/conffiles" || fail "camrtc.toml is not a conffile"
grep -q 'adduser --system' "$work/control/postinst" || fail "postinst creates no user"
grep -q 'deb-systemd-helper.*enable' "$work/control/postinst" || fail "postinst does not enable the unit"
grep -q '_dh_action=start' "$work/control/postinst" && grep -q 'deb-systemd-invoke .*camrtc.service' \
  "$work/control/postinst" || fail "postinst does not start the unit"
grep -q 'rm -rf /var/lib/camrtc' "$work/control/postrm" || fail "purge keeps /var/lib/camrtc"
say "contents, conffile, unit and maintainer scripts as expected; binary: ${machine%%,*}, $(cut -d, -f2 <<<"$machine")"

# lintian knows Debian's own packaging rules; these tags are about being outside the archive.
if command -v lintian >/dev/null; then
  lintian --tag-display-limit 0 --suppress-tags \
    no-changelog,no-manual-page,initial-upload-closes-no-bugs,maintainer-script-calls-systemctl \
    "$deb" 2>/dev/null | sed "s/^/inspect-deb: $arch: lintian: /" || true
  if lintian --suppress-tags no-changelog,no-manual-page "$deb" 2>/dev/null | grep -q "^E:"; then
    fail "lintian reports errors"
  fi
fi
say "$(stat -c %s "$deb") bytes: $(basename "$deb")"
