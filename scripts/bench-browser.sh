#!/usr/bin/env bash
# Measures camrtc with real browsers: time to first frame and glass-to-glass latency in headless
# Chromium (timecode read back from rendered frames), and the daemon's CPU and RSS, at 1 and 4
# viewers. Prints a Markdown table row per run, for docs/PERFORMANCE.md.
#
#   scripts/bench-browser.sh [VIEWERS...]     default: 1 4
#
# Uses the release build of `camrtc demo` (640x480@30, 1 Mbps H.264 + Opus test tone) on loopback.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh --test >/dev/null
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/camrtc
port=${BENCH_PORT:-18099}
window=10 # seconds of steady streaming sampled for CPU and RSS
tick=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

echo "| viewers | first frame ms (median of pages) | latency p50 ms | latency p95 ms | fps | daemon CPU (cores) | daemon RSS MB |"
echo "|---|---|---|---|---|---|---|"
for viewers in "${@:-1 4}"; do
  for n in $viewers; do
    "$bin" demo --listen "127.0.0.1:$port" >/dev/null 2>&1 &
    daemon=$!
    sleep 0.5
    out=$(mktemp)
    node tests/browser/viewer.mjs --url "http://127.0.0.1:$port/" --pages "$n" --seconds $((window + 4)) --timecode >"$out" &
    viewer=$!
    # Let every page connect and settle before sampling.
    sleep 4
    t0=$(cpu_ticks "$daemon")
    sleep "$window"
    t1=$(cpu_ticks "$daemon")
    rss=$(rss_kib "$daemon")
    wait "$viewer"
    kill -TERM "$daemon"
    wait "$daemon" || true
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const med = a => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
      const p = r.pages;
      const cpu = (Number(process.argv[3]) - Number(process.argv[2])) / Number(process.argv[4]) / Number(process.argv[5]);
      console.log(`| ${p.length} | ${med(p.map(x => x.firstFrameMs)).toFixed(0)} | ${med(p.map(x => x.latencyMs.p50)).toFixed(1)} | ${med(p.map(x => x.latencyMs.p95)).toFixed(1)} | ${med(p.map(x => x.fps)).toFixed(1)} | ${cpu.toFixed(3)} | ${(Number(process.argv[6]) / 1024).toFixed(1)} |`);
    ' "$out" "$t0" "$t1" "$tick" "$window" "$rss"
    rm -f "$out"
  done
done
