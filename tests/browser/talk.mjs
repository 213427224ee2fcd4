#!/usr/bin/env node
// Holds the viewer page's "hold to talk" button in headless Chromium, whose fake microphone plays
// a WAV file, and prints one line of JSON: what the page's talk state said before, during and
// after.
//
//   node talk.mjs --url http://127.0.0.1:8080/ --wav tone.wav [--hold-ms 3000]
//
// Exits 1 (reason on stderr) when the button never appears or the floor is not granted.
import { chromium } from 'playwright-core';
import fs from 'node:fs';

function parseArgs(argv) {
  const opts = { url: null, wav: null, holdMs: 3000 };
  for (let i = 0; i < argv.length; i++) {
    const value = () => argv[++i] ?? fail(`${argv[i - 1]} needs a value`, 2);
    switch (argv[i]) {
      case '--url': opts.url = value(); break;
      case '--wav': opts.wav = value(); break;
      case '--hold-ms': opts.holdMs = Number(value()); break;
      default: fail(`unknown argument ${argv[i]}`, 2);
    }
  }
  if (!opts.url || !opts.wav) fail('usage: node talk.mjs --url URL --wav FILE [--hold-ms MS]', 2);
  return opts;
}

function fail(message, code = 1) {
  process.stderr.write(`talk.mjs: ${message}\n`);
  process.exit(code);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) fail(`${executablePath} not found (run scripts/install-deps.sh --test)`);
  const browser = await chromium.launch({
    executablePath, headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--autoplay-policy=no-user-gesture-required', '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${opts.wav}`,
    ],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.grantPermissions(['microphone']);
    const page = await context.newPage();
    page.on('pageerror', (e) => process.stderr.write(`page: ${e.message}\n`));
    await page.goto(opts.url);
    try {
      await page.waitForFunction(() => window.camrtc?.state === 'live' && window.camrtc.talk.available,
        null, { timeout: 20_000, polling: 100 });
    } catch {
      const state = await page.evaluate(() => JSON.stringify(window.camrtc)).catch(() => '?');
      fail(`the talk button did not become available within 20 s: ${state}`);
    }
    const talkState = () => page.evaluate(() => {
      const { state, granted, refused, error } = window.camrtc.talk;
      return { state, granted, refused, error, label: document.getElementById('talk').textContent };
    });
    const before = await talkState();
    const box = await page.locator('#talk').boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    try {
      await page.waitForFunction(() => window.camrtc.talk.state === 'talking', null, { timeout: 10_000 });
    } catch {
      fail(`pressing the button did not start talking: ${JSON.stringify(await talkState())}`);
    }
    const during = await talkState();
    const pressedAt = Date.now();
    await page.waitForTimeout(opts.holdMs);
    await page.mouse.up();
    const releasedAfterMs = Date.now() - pressedAt;
    await page.waitForTimeout(300);
    const after = await talkState();
    process.stdout.write(JSON.stringify({ before, during, after, releasedAfterMs }) + '\n');
  } finally {
    await browser.close();
  }
}

main().catch((e) => fail(e.stack || String(e)));
