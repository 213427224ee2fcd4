#!/usr/bin/env bash
# Build and run the camrtc demo (test pattern + tone, or the camera when present); open the URL it
# prints (http://127.0.0.1:8080/ by default). Extra arguments go to `camrtc demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh
exec cargo run --release -- demo "$@"
