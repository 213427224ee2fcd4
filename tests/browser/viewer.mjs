#!/usr/bin/env node
// Headless-Chromium WHEP viewer harness for camrtc.
//
//   node viewer.mjs --url http://127.0.0.1:8080/ [--pages N] [--seconds S] [--timecode]
//                   [--accept-any-certificate] [--basic NAME:PASSWORD] [--restart-ice]
//                   [--network-change FILE]
//
// Launches ONE Chromium (Debian's /usr/bin/chromium, or $CHROMIUM), opens N tabs at --url (the
// daemon's embedded viewer page), waits until every tab has rendered a video frame, samples for S
// seconds and prints one line of JSON to stdout:
//
//   {"pages":[{"width":640,"height":480,"firstFrameMs":123.4,"framesDecoded":912,"fps":29.8,
//              "freezes":{"count":0,"seconds":0},"jitterBufferMs":7.6,
//              "audio":{"packetsReceived":1500,"totalAudioEnergy":0.42},
//              "latencyMs":{"n":150,"p50":41.2,"p95":60.3,"max":75.0},"timecodeErrors":0}]}
//
// Each page also reports secureContext (window.isSecureContext: whether the page could use the
// microphone), and openToFirstFrameMs: from the start of the page's navigation to its first
// frame, which counts what the page does before its POST. --accept-any-certificate trusts
// self-signed HTTPS certificates, as a person who clicked through the browser's warning does.
// --basic answers the browser's password prompt.
// latencyMs and timecodeErrors are null without --timecode. Each page also reports what it
// trickled (PATCHes, candidates, end-of-candidates), its ICE restarts and the selected candidate
// pair (types and the ICE username fragment in use). --restart-ice makes every page restart ICE
// (as after a network change) once it shows frames, and samples after the restart: the pair's
// ufragBefore is the one before it. --network-change FILE is the same with the network itself as
// the trigger: once every page shows frames the harness writes FILE, the caller changes the
// network (within 30 s), and the page must notice and restart ICE on its own. Exits 1 (reason on stderr) when a tab
// shows no frame within 20 s, 2 on bad arguments.
import { chromium } from 'playwright-core';
import fs from 'node:fs';

const FIRST_FRAME_TIMEOUT_MS = 20_000;
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

function usage(msg) {
  if (msg) process.stderr.write(`viewer.mjs: ${msg}\n`);
  process.stderr.write('usage: node viewer.mjs --url URL [--pages N] [--seconds S] [--timecode] [--accept-any-certificate] [--basic NAME:PASSWORD] [--restart-ice] [--network-change FILE]\n');
  process.exit(2);
}

function basicCredentials(text) {
  const colon = text.indexOf(':');
  if (colon < 1) usage('--basic takes NAME:PASSWORD');
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

function parseArgs(argv) {
  const opts = { url: null, pages: 1, seconds: 5, timecode: false, anyCertificate: false, basic: null, restartIce: false, networkChange: null };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    switch (flag) {
      case '--url': opts.url = value(); break;
      case '--pages': opts.pages = Number(value()); break;
      case '--seconds': opts.seconds = Number(value()); break;
      case '--timecode': opts.timecode = true; break;
      case '--accept-any-certificate': opts.anyCertificate = true; break;
      case '--basic': opts.basic = value(); break;
      case '--restart-ice': opts.restartIce = true; break;
      case '--network-change': opts.networkChange = value(); break;
      case '-h': case '--help': usage(); break;
      default: usage(`unknown argument ${argv[i]}`);
    }
  }
  if (!Number.isInteger(opts.pages) || opts.pages < 1) usage('--pages must be a positive integer');
  if (!(opts.seconds > 0)) usage('--seconds must be a positive number');
  if (!opts.url) usage('--url is required');
  return opts;
}

// Runs in every page before its own scripts. Records the page's RTCPeerConnections (so getStats
// works whatever the page does) and, when sampling with timecode on, decodes the burnt-in timecode
// of every presented frame.
function pageInit(timecode) {
  const H = (window.__harness = { pcs: [], sampling: false, latencies: [], timecodeErrors: 0 });
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); H.pcs.push(this); }
  };
  if (!timecode) return;

  // Timecode layout (see src/source/timecode.rs): top-left 256x48, 16x16-pixel squares, 16 per
  // row, 3 rows; row 0 = bits 31..16 of T, row 1 = bits 15..0, row 2 = ~(bits 15..0); MSB left.
  const SQ = 16, COLS = 16, ROWS = 3, W = SQ * COLS, Hh = SQ * ROWS;
  let ctx = null;
  const decode = (video) => {
    if (video.videoWidth < W || video.videoHeight < Hh) return null;
    if (!ctx) {
      const canvas = document.createElement('canvas');
      canvas.width = W; canvas.height = Hh;
      ctx = canvas.getContext('2d', { willReadFrequently: true });
    }
    ctx.drawImage(video, 0, 0, W, Hh, 0, 0, W, Hh);
    const px = ctx.getImageData(0, 0, W, Hh).data;
    const rows = [0, 0, 0];
    for (let r = 0; r < ROWS; r++) {
      for (let c = 0; c < COLS; c++) {
        let sum = 0; // mean luma of the centre 8x8 of the square
        for (let y = r * SQ + 4; y < r * SQ + 12; y++) {
          for (let x = c * SQ + 4; x < c * SQ + 12; x++) {
            const i = (y * W + x) * 4;
            sum += 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
          }
        }
        rows[r] = (rows[r] << 1) | (sum / 64 >= 128 ? 1 : 0);
      }
    }
    if (rows[2] !== (~rows[1] & 0xffff)) return null;
    return ((rows[0] << 16) | rows[1]) >>> 0;
  };

  const onFrame = (video) => (now, meta) => {
    video.requestVideoFrameCallback(onFrame(video));
    if (!H.sampling) return;
    const t = decode(video);
    if (t === null) { H.timecodeErrors++; return; }
    // Lift T (Unix ms mod 2^32) to full Unix ms: the latest instant <= now congruent to T.
    const wall = Date.now();
    const captured = wall - (((wall - t) % 2 ** 32) + 2 ** 32) % 2 ** 32;
    H.latencies.push(performance.timeOrigin + meta.expectedDisplayTime - captured);
  };
  const hook = () => {
    const video = document.querySelector('video');
    if (video) video.requestVideoFrameCallback(onFrame(video));
    else setTimeout(hook, 50);
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', hook);
  else hook();
}

// In the page: the inbound-rtp stats of the most recent peer connection.
async function inboundStats() {
  const pc = window.__harness.pcs.at(-1);
  const out = { video: null, audio: null };
  if (!pc) return out;
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && (s.kind === 'video' || s.kind === 'audio')) out[s.kind] = s;
  });
  return out;
}

// In the page: the selected candidate pair of the most recent peer connection.
async function selectedPair() {
  const pc = window.__harness.pcs.at(-1);
  if (!pc) return null;
  const report = await pc.getStats();
  let transport = null;
  report.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) transport = s; });
  const pair = transport && report.get(transport.selectedCandidatePairId);
  if (!pair) return null;
  const local = report.get(pair.localCandidateId) ?? {}, remote = report.get(pair.remoteCandidateId) ?? {};
  return {
    local: local.candidateType ?? null, remote: remote.candidateType ?? null,
    protocol: local.protocol ?? null,
    localAddress: `${local.address ?? '?'}:${local.port ?? '?'}`,
    remoteAddress: `${remote.address ?? '?'}:${remote.port ?? '?'}`,
    localUfrag: transport.iceLocalUsernameFragment ?? null,
  };
}

// Waits until a pair of a new ICE generation carries the page's media after `trigger` (which
// starts the restart, or lets the network break) ran. Returns the ufrag in use before and the
// milliseconds from the trigger until the new pair was selected.
async function restartIce(page, index, trigger, timeoutMs) {
  const before = (await page.evaluate(selectedPair))?.localUfrag ?? null;
  await trigger();
  const triggered = performance.now();
  // Polled from here: getStats is async, and waitForFunction does not await a predicate's promise.
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ufrag = (await page.evaluate(selectedPair))?.localUfrag ?? null;
    const succeeded = await page.evaluate(() => window.camrtc.restarts.succeeded);
    if (succeeded > 0 && ufrag && ufrag !== before) return { before, ms: performance.now() - triggered };
    await new Promise((r) => setTimeout(r, 100));
  }
  const state = await page.evaluate(() => JSON.stringify(window.camrtc)).catch(() => '?');
  throw new Error(`page ${index}: ICE restart did not take over within ${timeoutMs / 1000} s (${state})`);
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
const round3 = (x) => Math.round(x * 1000) / 1000;
// Mean time a video frame waited in the jitter buffer between two inbound-rtp snapshots.
function bufferedMs(before, after) {
  const emitted = (after.jitterBufferEmittedCount ?? 0) - (before.jitterBufferEmittedCount ?? 0);
  return emitted > 0 ? ((after.jitterBufferDelay ?? 0) - (before.jitterBufferDelay ?? 0)) / emitted * 1000 : null;
}
const round1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);

async function waitFirstFrame(page, index) {
  try {
    await page.waitForFunction(
      () => window.camrtc && window.camrtc.firstFrameAt !== null && window.camrtc.frames > 0,
      null, { timeout: FIRST_FRAME_TIMEOUT_MS, polling: 100 });
  } catch {
    const state = await page.evaluate(() => ({
      state: window.camrtc?.state,
      status: document.getElementById('status')?.textContent?.trim(),
    })).catch(() => ({}));
    throw new Error(`page ${index}: no video frame within ${FIRST_FRAME_TIMEOUT_MS / 1000} s ` +
      `(state ${state.state ?? '?'}, status "${state.status ?? '?'}")`);
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) {
    throw new Error(`${executablePath} not found (run scripts/install-deps.sh --test)`);
  }
  // chromium.launch() runs the browser on a fresh temporary profile (user-data-dir) that it
  // deletes on close. Each tab gets its own browser context, i.e. its own window: Chromium stops
  // rendering (and so firing requestVideoFrameCallback) in background tabs of a shared window.
  const browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
  try {
    const pages = [];
    for (let i = 0; i < opts.pages; i++) {
      const context = await browser.newContext({
        viewport: { width: 1280, height: 800 }, ignoreHTTPSErrors: opts.anyCertificate,
        httpCredentials: opts.basic ? basicCredentials(opts.basic) : undefined,
      });
      await context.addInitScript(pageInit, opts.timecode);
      const page = await context.newPage();
      page.on('pageerror', (e) => process.stderr.write(`page ${i}: ${e.message}\n`));
      pages.push(page);
    }
    await Promise.all(pages.map((p) => p.goto(opts.url, { waitUntil: 'load' })));
    await Promise.all(pages.map((p, i) => waitFirstFrame(p, i)));
    let restarted = pages.map(() => ({ before: null, ms: null }));
    if (opts.restartIce) {
      const requested = (p) => () => p.evaluate(() => window.camrtc.restartIce());
      restarted = await Promise.all(pages.map((p, i) => restartIce(p, i, requested(p), 10_000)));
    } else if (opts.networkChange) {
      let told = false;
      const tell = async () => { if (!told) { told = true; fs.writeFileSync(opts.networkChange, 'frames\n'); } };
      restarted = await Promise.all(pages.map((p, i) => restartIce(p, i, tell, 30_000)));
    }

    // Unmute through the page's own button: Chromium reports totalAudioEnergy 0 for muted media.
    await Promise.all(pages.map((p) => p.evaluate(() => {
      const button = document.getElementById('mute');
      const video = document.querySelector('video');
      if (button && video?.muted) button.click();
      else if (video) video.muted = false;
    })));

    // Sample window: stats snapshot, S seconds of timecode decoding, stats snapshot.
    const before = await Promise.all(pages.map(async (p) => {
      await p.evaluate(() => { window.__harness.sampling = true; });
      return p.evaluate(inboundStats);
    }));
    await new Promise((r) => setTimeout(r, opts.seconds * 1000));
    const results = await Promise.all(pages.map(async (p, i) => {
      const harness = await p.evaluate(() => {
        const h = window.__harness;
        h.sampling = false;
        return {
          latencies: h.latencies, timecodeErrors: h.timecodeErrors, camrtc: JSON.parse(JSON.stringify(window.camrtc)),
          secureContext: window.isSecureContext,
          banner: document.getElementById('event-banner')?.hidden === false
            ? document.getElementById('event-banner').textContent : null,
          privacyCover: document.getElementById('privacy-cover')?.hidden === false,
        };
      });
      const after = await p.evaluate(inboundStats);
      const pair = await p.evaluate(selectedPair);
      const v = after.video ?? {}, v0 = before[i].video ?? {};
      const seconds = ((v.timestamp ?? 0) - (v0.timestamp ?? 0)) / 1000;
      const fps = seconds > 0 ? ((v.framesDecoded ?? 0) - (v0.framesDecoded ?? 0)) / seconds : null;
      const lat = harness.latencies.slice().sort((a, b) => a - b);
      return {
        width: v.frameWidth ?? null,
        height: v.frameHeight ?? null,
        secureContext: harness.secureContext,
        firstFrameMs: round1(harness.camrtc.firstFrameAt - harness.camrtc.postStartedAt),
        openToFirstFrameMs: round1(harness.camrtc.firstFrameAt),
        framesDecoded: v.framesDecoded ?? 0,
        fps: round1(fps),
        // Chromium's own judgement of smoothness over the window: a freeze is a gap between
        // rendered frames well above their average spacing (webrtc-stats freezeCount).
        freezes: { count: (v.freezeCount ?? 0) - (v0.freezeCount ?? 0), seconds: round3((v.totalFreezesDuration ?? 0) - (v0.totalFreezesDuration ?? 0)) },
        jitterBufferMs: round1(bufferedMs(v0, v)),
        audio: {
          packetsReceived: after.audio?.packetsReceived ?? 0,
          totalAudioEnergy: Math.round((after.audio?.totalAudioEnergy ?? 0) * 1e4) / 1e4,
        },
        latencyMs: opts.timecode
          ? { n: lat.length, p50: round1(percentile(lat, 50)), p95: round1(percentile(lat, 95)), max: round1(lat.at(-1) ?? null) }
          : null,
        timecodeErrors: opts.timecode ? harness.timecodeErrors : null,
        trickled: harness.camrtc.trickled,
        restarts: harness.camrtc.restarts,
        sessions: harness.camrtc.sessions,
        events: harness.camrtc.events ?? [],
        eventBanner: harness.banner,
        privacy: harness.camrtc.privacy ?? false,
        privacyCover: harness.privacyCover,
        selectedPair: pair && { ...pair, ufragBefore: restarted[i].before, restartMs: round1(restarted[i].ms) },
      };
    }));
    process.stdout.write(JSON.stringify({ pages: results }) + '\n');

    // Close the tabs as a person would, so the page's pagehide handler DELETEs its WHEP session
    // (browser.close() alone kills them and the server waits for ICE to time out).
    await Promise.all(pages.map((p) => p.close({ runBeforeUnload: true }).catch(() => {})));
    await new Promise((r) => setTimeout(r, 300)); // let the keepalive DELETEs leave
  } finally {
    await browser.close().catch(() => {});
  }
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`viewer.mjs: ${err.message}\n`);
  process.exit(1);
});
