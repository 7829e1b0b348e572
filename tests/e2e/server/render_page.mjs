// Renders a self-contained page in headless Chromium and reports what it drew: every SVG bar
// (class "bar") with its data- attributes and drawn height, every coloured token of Figure 8, and
// whether the page asked the network for anything. Used by test_routing_report.py.
//
//   SMOE_PAGE=/path/report.html             the page (required)
//   SMOE_SCREENSHOT=/path/report.png        where to save a full-page screenshot (optional)
//   SMOE_CHROMIUM=/usr/bin/chromium         the browser (default /usr/bin/chromium)
//
// Prints one JSON line; exit status 0, 1 on failure, 77 skipped (no chromium or no node_modules).
import fs from 'node:fs';

const SKIP = 77;
const page = process.env.SMOE_PAGE || '';
const shot = process.env.SMOE_SCREENSHOT || '';
const chromiumPath = process.env.SMOE_CHROMIUM || '/usr/bin/chromium';
if (!page || !fs.existsSync(page)) {
  console.error(`FAIL: SMOE_PAGE (${page}) is not a file`);
  process.exit(1);
}
if (!fs.existsSync(chromiumPath)) {
  console.log(`SKIP: ${chromiumPath} is missing (apt-get install -y chromium)`);
  process.exit(SKIP);
}
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  console.log('SKIP: playwright-core is not installed here (run `npm ci` in tests/e2e/server)');
  process.exit(SKIP);
}
const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const tab = await ctx.newPage();
  const requests = [];
  tab.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });
  await tab.goto('file://' + page);
  const drawn = await tab.evaluate(() => ({
    bars: [...document.querySelectorAll('rect.bar')].map((b) => ({
      layer: Number(b.dataset.layer), domain: b.dataset.domain, expert: Number(b.dataset.expert),
      share: Number(b.dataset.share), height: b.getBoundingClientRect().height,
    })),
    tokens: [...document.querySelectorAll('.tokens span')].length,
    cells: [...document.querySelectorAll('#table5 td[data-value]')].map((c) => ({
      layer: Number(c.dataset.layer), domain: c.dataset.domain, kind: c.dataset.kind,
      value: Number(c.dataset.value), text: c.textContent,
    })),
  }));
  if (shot) await tab.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({ ...drawn, requests }));
} finally {
  await browser.close();
}
