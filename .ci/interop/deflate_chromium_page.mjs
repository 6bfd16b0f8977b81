// Opens .ci/interop/deflate_chromium.html in headless Chromium (Debian's, via playwright-core)
// and waits until the page has a verdict in #out (it starts as "pending"), then prints it.
// usage: NODE_DIR=... node deflate_chromium_page.mjs PAGE_URL
import { createRequire } from 'node:module';
const require = createRequire(process.env.NODE_DIR + '/node_modules/');
const { chromium } = require('playwright-core');

const [url] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
let verdict = 'no verdict';
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error('[page error]', String(e)));
  await page.goto(url);
  // The exchange is real network I/O: wait for it instead of a virtual-time budget.
  await page.waitForFunction(
    () => document.getElementById('out').textContent !== 'pending', null, { timeout: 60000 });
  verdict = await page.textContent('#out');
} catch (e) {
  verdict = 'timeout or error: ' + String(e).split('\n')[0];
} finally {
  await browser.close();
}
console.log(verdict);
