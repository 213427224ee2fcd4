#!/usr/bin/env bash
# Builds camrtc for one Debian architecture, in release mode:
#
#   cross/build.sh ARCH        ARCH: amd64, arm64 or armhf
#
# One cargo invocation produces both the `camrtc` binary (what the .deb ships) and the unit-test
# binaries of camrtc's library and of camrtc-untrusted (what cross/test-qemu.sh runs under
# emulation), so the dependency tree is compiled once per target. (Because the tests are in the
# same build, cargo enables tokio's `test-util` feature, a dev-dependency, in the binary too; it
# only adds clock-pausing functions that the daemon never calls.) Writes the unit-test binaries'
# paths, one a line, to $OUT/camrtc-lib-tests.path.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO/cross/env.sh"
cross_env "${1:?usage: cross/build.sh amd64|arm64|armhf}"
shift
cd "$REPO"
"$REPO/cross/install-deps.sh" "$DEB_ARCH"

out=$(cross_out_dir)
json=$(mktemp)
trap 'rm -f "$json"' EXIT
# `--test cli` makes cargo build the real binary (integration tests need it) in this invocation.
# scripts/test.sh lints with clippy in its host build; the shipped binary is plain rustc's.
env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS cargo test --release --locked --target "$RUST_TARGET" --no-run \
  -p camrtc -p camrtc-untrusted --lib --test cli "$@" \
  --message-format=json-render-diagnostics >"$json"
lib_tests=$(python3 - "$json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg["target"]["kind"] == ["lib"] \
            and msg["profile"]["test"] and msg.get("executable"):
        print(msg["executable"])
PY
)
[[ -x $out/camrtc && $(wc -l <<<"$lib_tests") == 2 ]] ||
  { echo "cross: build produced no binary, or not both unit-test binaries: $lib_tests" >&2; exit 1; }
echo "$lib_tests" >"$out/camrtc-lib-tests.path"
echo "cross: $DEB_ARCH: $out/camrtc ($(stat -c %s "$out/camrtc") bytes, $(file -b "$out/camrtc" | cut -d, -f1-2))"
