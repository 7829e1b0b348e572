// The real `openai` client against `smoe serve` on the demo model: chat and completions, streamed
// and not, n, stop, logprobs, logit_bias, usage, the models list, and every error status.
// Env: SMOE_SERVER_URL (a server with --api-key $SMOE_API_KEY and --max-body 65536), SMOE_BUSY_URL
// (a server with --max-seqs 1 --max-queue 1). Exits 1 with the failed checks.
import OpenAI from "openai";

const url = process.env.SMOE_SERVER_URL;
const busyUrl = process.env.SMOE_BUSY_URL;
const key = process.env.SMOE_API_KEY;
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, timeout: 60000 });
let passed = 0;
const failures = [];
function check(cond, what) {
  if (cond) passed++;
  else failures.push(what);
}
function eq(got, want, what) {
  check(JSON.stringify(got) === JSON.stringify(want), `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}
const greedy = { temperature: 0 };
const user = (content) => [{ role: "user", content }];

async function expectStatus(promise, status, what, pattern) {
  try {
    await promise;
    check(false, `${what}: no error, want ${status}`);
  } catch (e) {
    eq(e.status, status, `${what}: status`);
    const msg = e?.error?.message ?? e.message ?? "";
    check(typeof e?.error?.type === "string", `${what}: error has a type (${JSON.stringify(e.error)})`);
    if (pattern) check(pattern.test(msg), `${what}: message '${msg}' does not match ${pattern}`);
  }
}

async function raw(path, body, headers = {}, base = url) {
  const r = await fetch(`${base}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}`, ...headers },
    body,
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch {}
  return { status: r.status, headers: r.headers, json, text };
}

async function models() {
  const list = await client.models.list();
  eq(list.data.map((m) => m.id), ["demo"], "models list");
  eq(list.data[0].object, "model", "model object");
}

async function chat() {
  const r = await client.chat.completions.create({ model: "demo", messages: user("417+86="), ...greedy });
  eq(r.choices[0].message.content, "503", "chat answer");
  eq(r.choices[0].message.role, "assistant", "chat role");
  eq(r.choices[0].finish_reason, "stop", "chat finish");
  eq(r.object, "chat.completion", "chat object");
  check(r.id.startsWith("chatcmpl-") && r.created > 0 && r.model === "demo", "chat id/created/model");
  eq(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens, "chat usage sums");
  check(r.usage.prompt_tokens > 5 && r.usage.completion_tokens >= 3, `chat usage ${JSON.stringify(r.usage)}`);
  // A system message and a history (the demo has no template: the last user turn is the prompt).
  const h = await client.chat.completions.create({
    messages: [{ role: "system", content: "" }, ...user("1+1="), { role: "assistant", content: "2" },
               { role: "developer", content: "" }, ...user("sort 7 3 9 1=")], ...greedy });
  eq(h.choices[0].message.content, "1 3 7 9", "chat with history");
}

async function chatStream() {
  const stream = await client.chat.completions.create({
    messages: user("417+86="), stream: true, stream_options: { include_usage: true }, ...greedy });
  let text = "", finish = null, usage = null, role = null, chunks = 0;
  for await (const c of stream) {
    chunks++;
    eq(c.object, "chat.completion.chunk", "stream chunk object");
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      if (ch.delta.role) role = ch.delta.role;
      text += ch.delta.content ?? "";
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  eq(text, "503", "streamed chat answer");
  eq(role, "assistant", "streamed role");
  eq(finish, "stop", "streamed finish");
  check(usage && usage.completion_tokens >= 3, `streamed usage ${JSON.stringify(usage)}`);
}

async function completions() {
  const r = await client.completions.create({ model: "demo", prompt: "417+86=", max_tokens: 8, ...greedy });
  eq(r.choices[0].text, "503", "completion answer");
  eq(r.object, "text_completion", "completion object");
  const many = await client.completions.create({ prompt: ["417+86=", "sort 7 3 9 1="], max_tokens: 16, ...greedy });
  eq(many.choices.map((c) => [c.index, c.text]), [[0, "503"], [1, "1 3 7 9"]], "list of prompts");
  const ids = await client.completions.create({ prompt: [1, 52, 49, 55, 43, 56, 54, 61], max_tokens: 8, ...greedy });
  check(typeof ids.choices[0].text === "string", "token-id prompt");
  const s = await client.completions.create({ prompt: "417+86=", stream: true, max_tokens: 8, ...greedy });
  let text = "";
  for await (const c of s) text += c.choices.map((x) => x.text).join("");
  eq(text, "503", "streamed completion");
  const echo = await client.completions.create({ prompt: "417+86=", echo: true, max_tokens: 8, ...greedy });
  eq(echo.choices[0].text, "417+86=503", "echo");
}

async function nAndSeeds() {
  const r = await client.chat.completions.create({ messages: user("417+86="), n: 3, ...greedy });
  eq(r.choices.map((c) => [c.index, c.message.content]), [[0, "503"], [1, "503"], [2, "503"]], "n=3 greedy");
  // "9+" leaves the demo model unsure what comes next: sampled choices differ.
  const sampled = { messages: user("9+"), n: 4, temperature: 1.5, seed: 11, max_tokens: 12 };
  const a = await client.chat.completions.create(sampled);
  const b = await client.chat.completions.create(sampled);
  eq(a.choices.map((c) => c.message.content), b.choices.map((c) => c.message.content), "seeded n=4 repeats");
  check(new Set(a.choices.map((c) => c.message.content)).size > 1, `choices differ: ${JSON.stringify(a.choices.map((c) => c.message.content))}`);
  eq(a.usage.prompt_tokens, b.usage.prompt_tokens, "n choices count the prompt once");
}

async function stopsAndLimits() {
  const r = await client.completions.create({ prompt: "sort 9 8 7 6 5=", stop: [" 8", "zz"], max_tokens: 20, ...greedy });
  eq([r.choices[0].text, r.choices[0].finish_reason], ["5 6 7", "stop"], "stop strings");
  const one = await client.chat.completions.create({ messages: user("417+86="), max_tokens: 1, ...greedy });
  eq([one.choices[0].message.content, one.choices[0].finish_reason], ["5", "length"], "max_tokens");
  const mct = await client.chat.completions.create({ messages: user("417+86="), max_completion_tokens: 2, ...greedy });
  eq(mct.choices[0].message.content, "50", "max_completion_tokens");
  const extras = await client.chat.completions.create({
    messages: user("417+86="), temperature: 0.5, top_p: 0.9, presence_penalty: 0.1, frequency_penalty: 0.1,
    seed: 3, user: "tester", top_k: 5, min_p: 0.05, repeat_penalty: 1.1 });
  check(typeof extras.choices[0].message.content === "string", "sampling fields and llama.cpp extras accepted");
}

async function logprobs() {
  const r = await client.chat.completions.create({ messages: user("417+86="), logprobs: true, top_logprobs: 2, ...greedy });
  const lp = r.choices[0].logprobs.content;
  eq(lp.map((t) => t.token).join(""), "503", "chat logprob tokens spell the answer");
  check(lp.every((t) => t.logprob <= 0 && t.top_logprobs.length === 2 && Array.isArray(t.bytes)), "chat logprobs shape");
  check(lp.every((t) => t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob), "top logprobs sorted");
  const c = await client.completions.create({ prompt: "417+86=", logprobs: 3, max_tokens: 3, ...greedy });
  const l = c.choices[0].logprobs;
  eq(l.tokens.join(""), "503", "completion logprob tokens");
  check(l.token_logprobs.length === 3 && l.top_logprobs.every((t) => Object.keys(t).length === 3), "completion logprobs shape");
  eq(l.text_offset, [0, 1, 2], "text offsets");
  // logit_bias: ban the answer's first token ("5"); the answer changes.
  const id5 = 270;  // the demo tokenizer's "5" (`smoe tokenize -m models/demo.gguf -p 5`)
  const first = await client.completions.create({ prompt: "417+86=", logprobs: 1, max_tokens: 1, ...greedy });
  eq(first.choices[0].logprobs.tokens[0], "5", "first answer token");
  const banned = await client.completions.create({ prompt: "417+86=", logit_bias: { [id5]: -100 }, max_tokens: 3, ...greedy });
  check(!banned.choices[0].text.startsWith("5"), `logit_bias bans token ${id5}: got '${banned.choices[0].text}'`);
}

async function errors() {
  await expectStatus(client.chat.completions.create({ messages: user("1+1="), temperature: "hot" }), 400, "wrong type", /temperature/);
  await expectStatus(client.chat.completions.create({ messages: [{ role: "wizard", content: "hi" }] }), 400, "unknown role", /wizard/);
  await expectStatus(client.chat.completions.create({ messages: [] }), 400, "no messages", /messages/);
  await expectStatus(client.chat.completions.create({ messages: user("1+1="), n: 0 }), 400, "n out of range", /'n'/);
  await expectStatus(client.completions.create({ prompt: "1+1= ".repeat(3000), max_tokens: 4 }), 400, "prompt too long", /4096 tokens.*15002 tokens/);
  await expectStatus(client.chat.completions.create({ messages: user("1+1="), max_tokens: 0 }), 400, "max_tokens 0", /max_tokens/);
  await expectStatus(client.chat.completions.create({ messages: user("1+1="), tools: [{ type: "function", function: { name: "f" } }] }), 400, "tools refused", /tools/);
  await expectStatus(client.chat.completions.create({ messages: user("1+1="), response_format: { type: "json_object" } }), 400, "json mode refused", /response_format/);
  const bad = new OpenAI({ baseURL: `${url}/v1`, apiKey: "wrong", maxRetries: 0 });
  await expectStatus(bad.models.list(), 401, "wrong key", /API key/);
  const r = await raw("/v1/chat/completions", "{not json");
  eq([r.status, r.json?.error?.type], [400, "invalid_request_error"], "malformed JSON");
  const arr = await raw("/v1/chat/completions", "[1,2]");
  eq(arr.status, 400, "JSON that is not an object");
  const nf = await raw("/v1/nothing", "{}");
  eq([nf.status, typeof nf.json?.error?.message], [404, "string"], "unknown endpoint");
  const big = await raw("/v1/completions", JSON.stringify({ prompt: "x".repeat(70000) }));
  eq([big.status, typeof big.json?.error?.message], [413, "string"], "oversize body");
  const noKey = await raw("/v1/models", undefined, { Authorization: "" });
  eq(noKey.status, 401, "no key");
  const health = await raw("/health", undefined, { Authorization: "" });
  eq(health.status, 200, "health needs no key");
}

async function busy() {
  // One running sequence and one queued request: the third concurrent request is refused.
  const body = JSON.stringify({ prompt: "1+1=", max_tokens: 3000, ignore_eos: true, temperature: 0 });
  const rs = await Promise.all([0, 1, 2, 3, 4].map(() => raw("/v1/completions", body, {}, busyUrl)));
  const refused = rs.filter((r) => r.status === 429);
  check(refused.length >= 1, `429 when the queue is full: statuses ${rs.map((r) => r.status)}`);
  check(refused.every((r) => Number(r.headers.get("retry-after")) > 0), "429 carries Retry-After");
  check(refused.every((r) => r.json?.error?.code === "rate_limit_exceeded"), "429 error shape");
  check(rs.filter((r) => r.status === 200).every((r) => r.json.usage.completion_tokens === 3000), "the admitted ones finish");
}

for (const t of [models, chat, chatStream, completions, nAndSeeds, stopsAndLimits, logprobs, errors, busy]) {
  try {
    await t();
  } catch (e) {
    failures.push(`${t.name}: ${e.stack || e}`);
  }
}
console.log(`${passed} passed, ${failures.length} failed`);
for (const f of failures) console.log(`FAIL: ${f}`);
process.exit(failures.length ? 1 : 0);
