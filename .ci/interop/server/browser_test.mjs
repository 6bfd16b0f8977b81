// Headless Chromium (Debian's chromium, driven by playwright-core) against the demo page:
// two pages chat; the message sent from one must appear in the other.
// usage: node browser_test.mjs PORT SCREENSHOT_PATH
// With env EXPECT_EXTENSIONS set, each page's WebSocket must have negotiated exactly that
// `Sec-WebSocket-Extensions` answer prefix (e.g. permessage-deflate; "none" for no extension).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
const require = createRequire(process.env.NODE_DIR + '/node_modules/');
const { chromium } = require('playwright-core');

const [port, shot] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}/`;
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stompbox-chromium-'));
const browser = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1100, height: 620 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failed = false;
try {
  const a = await browser.newPage();
  const b = await browser.newPage();
  const errors = [];
  for (const p of [a, b]) p.on('pageerror', (e) => errors.push(String(e)));
  // Keep every WebSocket the page opens, to read its negotiated extensions (ws.extensions).
  for (const p of [a, b]) await p.addInitScript(() => {
    const Native = window.WebSocket;
    window.__sockets = [];
    window.WebSocket = class extends Native {
      constructor(...args) { super(...args); window.__sockets.push(this); }
    };
  });
  await a.goto(base + '?nick=alice');
  await b.goto(base + '?nick=bob');
  for (const p of [a, b]) await p.waitForSelector('#status.on', { timeout: 15000 });
  console.log('[browser] ok: both pages connected over STOMP/WebSocket');
  const text = 'hello from page A ' + Date.now();
  await a.fill('#text', text);
  await a.click('#send');
  await b.waitForSelector(`#messages li:has-text("${text}")`, { timeout: 10000 });
  const line = await b.textContent(`#messages li:has-text("${text}")`);
  if (!line.includes('alice')) throw new Error('nick missing in ' + line);
  console.log('[browser] ok: page B received the chat message: ' + line.trim());
  await b.fill('#text', 'and hello back from B');
  await b.click('#send');
  await a.waitForSelector('#messages li:has-text("and hello back from B")', { timeout: 10000 });
  console.log('[browser] ok: page A received the answer');
  const want = process.env.EXPECT_EXTENSIONS;
  for (const [name, p] of [['A', a], ['B', b]]) {
    const exts = await p.evaluate(() => window.__sockets.filter((s) => s.readyState === 1).map((s) => s.extensions));
    console.log(`[browser] page ${name} WebSocket extensions: ${JSON.stringify(exts)}`);
    if (want !== undefined) {
      const ok = exts.length > 0 && exts.every((e) => (want === 'none' ? e === '' : e.startsWith(want)));
      if (!ok) throw new Error(`page ${name}: extensions ${JSON.stringify(exts)}, expected ${want}`);
    }
  }
  if (want !== undefined) console.log(`[browser] ok: both pages negotiated ${want}`);
  // The live stats view refreshes every 2 s: wait until it shows the chat's deliveries.
  await b.waitForFunction(() => [...document.querySelectorAll('#stats tr')].some(
    (tr) => tr.cells[0].textContent === 'messages delivered' && parseInt(tr.cells[1].textContent, 10) >= 4), null, { timeout: 10000 });
  console.log('[browser] ok: live stats show the deliveries (GET /stats)');
  await b.screenshot({ path: shot });
  console.log('[browser] screenshot: ' + shot);
  if (errors.length) throw new Error('page errors: ' + errors.join('; '));
} catch (e) {
  console.error('FAILED: ' + e.message);
  failed = true;
} finally {
  await browser.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
