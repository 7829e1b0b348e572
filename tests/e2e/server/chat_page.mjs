// Browser test of the chat page that `smoe serve` serves at /.
//
//   SMOE_SERVER_URL=http://127.0.0.1:PORT   the running server (required)
//   SMOE_SCREENSHOT=/path/page.png          where to save a screenshot (optional)
//   SMOE_API_KEY=KEY                        entered in the page's settings when the server wants one
//   SMOE_CHROMIUM=/usr/bin/chromium         the browser (default /usr/bin/chromium)
//
// Exit status: 0 passed, 1 failed, 77 skipped (no chromium or no node_modules: run `npm ci` here).
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const SKIP = 77;
const STEP_MS = 60_000;

function skip(why) {
  console.log(`SKIP: ${why}`);
  process.exit(SKIP);
}

class Failure extends Error {}
function check(cond, msg) {
  if (!cond) throw new Failure(msg);
}

const baseUrl = (process.env.SMOE_SERVER_URL || '').replace(/\/+$/, '');
const screenshot = process.env.SMOE_SCREENSHOT || '';
const apiKey = process.env.SMOE_API_KEY || '';
const chromiumPath = process.env.SMOE_CHROMIUM || '/usr/bin/chromium';

if (!baseUrl) {
  console.error('FAIL: set SMOE_SERVER_URL to the server, e.g. http://127.0.0.1:8080');
  process.exit(1);
}
if (!fs.existsSync(chromiumPath)) skip(`${chromiumPath} is missing (apt-get install -y chromium)`);
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  skip(`playwright-core is not installed (run \`npm ci\` in ${path.dirname(new URL(import.meta.url).pathname)}): ${e.message}`);
}

// A local server that streams a slow answer, one piece every 150 ms, for the Stop
// check: the real server answers too fast to be stopped reliably. It records
// whether the browser closed the connection.
const SLOW_PIECES = ['Counting', ' slowly:', ' ünï', 'cødé', ' 日本', ' <b>not', ' bold</b>', ' 🎉'];
const slow = { started: false, closed: false, sent: 0 };
const slowServer = http.createServer((req, res) => {
  req.resume();
  slow.started = true;
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  const base = { id: 'chatcmpl-slow', object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: 'slow' };
  const event = (delta) => Buffer.from(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, finish_reason: null }] })}\r\n\r\n`);
  res.write(event({ role: 'assistant', content: '' }));
  let i = 0;
  const timer = setInterval(() => {
    // Cut each event in the middle of a multi-byte character where there is one,
    // so that lines and characters arrive split across reads.
    const bytes = event({ content: SLOW_PIECES[i % SLOW_PIECES.length] + (i >= SLOW_PIECES.length ? ` ${i}` : '') });
    let cut = bytes.findIndex((b) => b >= 0xc0);
    cut = cut > 0 ? cut + 1 : bytes.length >> 1;
    res.write(bytes.subarray(0, cut));
    setTimeout(() => { if (!res.destroyed) res.write(bytes.subarray(cut)); }, 20);
    slow.sent = ++i;
  }, 150);
  res.on('close', () => { clearInterval(timer); slow.closed = true; });
});
await new Promise((resolve) => slowServer.listen(0, '127.0.0.1', resolve));
const slowUrl = `http://127.0.0.1:${slowServer.address().port}/v1/chat/completions`;

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoe-chat-page-'));
let context;
let page;
const pageErrors = [];
const consoleLines = [];

async function waitDone(count) {
  await page.waitForFunction(
    (n) => document.querySelectorAll('#messages .msg.assistant[data-done="1"]').length >= n,
    count, { timeout: STEP_MS },
  ).catch(() => {
    throw new Failure(`answer ${count} did not finish within ${STEP_MS / 1000} s`);
  });
  return page.locator('#messages .msg.assistant').nth(count - 1);
}

async function ask(question) {
  await page.locator('#prompt').click();
  await page.keyboard.type(question);
  await page.keyboard.press('Enter');
}

async function setSetting(id, value) {
  if (await page.locator('#settings').isHidden()) await page.click('#settings-toggle');
  await page.fill(id, value);
  await page.dispatchEvent(id, 'change');
}

async function main() {
  const headers = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
  let modelId;
  try {
    const r = await fetch(`${baseUrl}/v1/models`, { headers });
    const j = await r.json();
    modelId = j.data[0].id;
  } catch (e) {
    throw new Failure(`GET ${baseUrl}/v1/models did not give a model list: ${e.message}`);
  }

  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 900, height: 760 },
  });
  page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  const bodies = [];
  const foreign = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(`${baseUrl}/`) && !r.url().startsWith('data:')) foreign.push(r.url());
    if (r.method() === 'POST' && r.url().endsWith('/v1/chat/completions')) bodies.push(r.postDataJSON());
  });

  const resp = await page.goto(`${baseUrl}/`);
  check(resp && resp.ok(), `GET / answered ${resp && resp.status()}`);
  check(/text\/html/.test(resp.headers()['content-type'] || ''), `GET / is not text/html: ${resp.headers()['content-type']}`);

  if (apiKey) await setSetting('#api-key', apiKey);
  await page.waitForFunction((id) => document.querySelector('#model-name').textContent.trim() === id, modelId)
    .catch(async () => {
      throw new Failure(`#model-name shows "${await page.textContent('#model-name')}", not "${modelId}"`);
    });
  console.log(`ok: model name "${modelId}" shown`);

  // Greedy and short, so that the demo model's answers are exact.
  await setSetting('#temperature', '0');
  await setSetting('#max-tokens', '32');
  await page.click('#settings-toggle');

  await ask('417+86=');
  let bubble = await waitDone(1);
  const first = await bubble.locator('.content').textContent();
  check(first.trim() === '503', `answer to "417+86=" is ${JSON.stringify(first)}, not "503"`);
  check(await bubble.getAttribute('data-finish') === 'stop', `first answer finished with ${await bubble.getAttribute('data-finish')}`);
  check(/\d+ tokens?/.test(await bubble.locator('.meta').textContent()), 'no token count under the first answer');
  console.log('ok: 417+86= -> 503');

  await ask('sort 7 3 9 1=');
  bubble = await waitDone(2);
  const second = await bubble.locator('.content').textContent();
  check(second.trim() === '1 3 7 9', `answer to "sort 7 3 9 1=" is ${JSON.stringify(second)}, not "1 3 7 9"`);
  console.log('ok: sort 7 3 9 1= -> 1 3 7 9');

  check(bodies.length === 2, `expected 2 chat requests, saw ${bodies.length}`);
  const b = bodies[1];
  check(b.model === modelId && b.stream === true, `second request: model ${b.model}, stream ${b.stream}`);
  check(b.temperature === 0 && b.max_tokens === 32, `second request: temperature ${b.temperature}, max_tokens ${b.max_tokens}`);
  check(b.stream_options && b.stream_options.include_usage === true, 'second request does not ask for usage');
  const convo = b.messages.filter((m) => m.role !== 'system').map((m) => [m.role, m.content.trim()]);
  const want = [['user', '417+86='], ['assistant', '503'], ['user', 'sort 7 3 9 1=']];
  check(JSON.stringify(convo) === JSON.stringify(want),
    `second request did not carry the conversation: ${JSON.stringify(b.messages)}`);
  console.log('ok: second request carried the whole conversation');

  // Stop: the next request goes to the slow local stream instead of the server.
  await setSetting('#max-tokens', '4096');
  await page.click('#settings-toggle');
  await page.route('**/v1/chat/completions', (route) => route.continue({ url: slowUrl }), { times: 1 });
  await ask('count slowly to a thousand');
  await page.waitForFunction(() => {
    const c = document.querySelectorAll('#messages .msg.assistant .content')[2];
    return c && c.textContent.includes('<b>not');
  }, null, { timeout: 15_000 }).catch(() => { throw new Failure('the slow answer did not stream into the page'); });
  check(await page.isEnabled('#stop'), '#stop is not enabled while the answer streams');
  check(await page.isDisabled('#send'), '#send is enabled while the answer streams');
  await page.click('#stop');
  bubble = await waitDone(3);
  check(await bubble.getAttribute('data-finish') === 'aborted', `stopped answer finished with ${await bubble.getAttribute('data-finish')}`);
  const partial = await bubble.locator('.content').textContent();
  check(partial.startsWith('Counting slowly: ünïcødé 日本 <b>not'), `partial answer lost or garbled: ${JSON.stringify(partial)}`);
  check(await bubble.locator('b').count() === 0, 'model output was rendered as HTML');
  check(bodies[2] && bodies[2].max_tokens === 4096, `third request max_tokens ${bodies[2] && bodies[2].max_tokens}`);
  check(bodies[2].messages.filter((m) => m.role !== 'system').length === 5, 'third request did not carry the conversation');
  const sentAtStop = slow.sent;
  await page.waitForTimeout(600);
  check(slow.closed, 'the browser did not close the stream after Stop');
  check(await bubble.locator('.content').textContent() === partial, 'the answer kept growing after Stop');
  check(slow.sent <= sentAtStop + 1, 'the slow stream kept sending after Stop');
  check(await page.isDisabled('#stop') && await page.isEnabled('#send'), 'buttons not reset after Stop');
  check(await page.evaluate(() => document.activeElement && document.activeElement.id) === 'prompt', '#prompt has no focus after Stop');
  await page.keyboard.type('still usable');
  check(await page.inputValue('#prompt') === 'still usable', '#prompt does not take input after Stop');
  await page.fill('#prompt', '');
  console.log(`ok: Stop ended the stream after ${slow.sent} pieces, answer marked aborted, input usable`);

  if (screenshot) {
    await page.screenshot({ path: screenshot, fullPage: false });
    console.log(`screenshot: ${screenshot}`);
  }

  await page.click('#new-chat');
  check(await page.locator('#messages .msg').count() === 0, '#new-chat left messages behind');
  console.log('ok: New chat cleared the conversation');

  check(foreign.length === 0, `the page fetched from elsewhere: ${foreign.join(' ')}`);
  check(pageErrors.length === 0, `errors in the page: ${pageErrors.join('; ')}`);
}

let status = 0;
const watchdog = setTimeout(() => {
  console.error('FAIL: the test took longer than 5 minutes');
  process.exit(1);
}, 300_000);
try {
  await main();
  console.log('PASS: chat page');
} catch (e) {
  status = 1;
  console.error(`FAIL: ${e instanceof Failure ? e.message : e.stack || e}`);
  if (consoleLines.length) console.error(`page console:\n  ${consoleLines.slice(-20).join('\n  ')}`);
  if (pageErrors.length) console.error(`page errors:\n  ${pageErrors.join('\n  ')}`);
  if (page && screenshot) await page.screenshot({ path: screenshot }).catch(() => {});
} finally {
  if (context) await context.close().catch(() => {});
  slowServer.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
  clearTimeout(watchdog);
}
process.exit(status);
