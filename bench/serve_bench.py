#!/usr/bin/env python3
"""Serving benchmark: OpenAI-compatible servers under concurrent streaming load.

Starts each engine from the command given on the command line, waits for `GET /health` to answer
200, drives `POST /v1/completions` with streaming clients, stops the engine (SIGTERM, then SIGKILL),
and goes on to the next engine. Engines are interleaved round-robin for --rounds rounds, each round
on a freshly started server, because the speed of a shared machine drifts by 20-30% within minutes:
only numbers taken close together in time are compared.

Usage (standard library only; the machine's /usr/bin/python3):

  /usr/bin/python3 bench/serve_bench.py \\
      --engine smoe="build/smoe serve -m MODEL --port {port} -t 2 --max-seqs 16 --no-mmap" \\
      --engine llama-server="LLAMA_SERVER -m MODEL --port {port} -t 2 -np 16 -c 65536 --no-mmap" \\
      --rounds 3 --clients 1,4,8,16 --requests-per-client 4 --long-prompt 2000 \\
      --json serve.json > serve.md

Give llama-server at least as many slots (-np) as the most concurrent requests (16 clients, or the
long-prompt scenario's 8 clients + 1) or it queues the rest, and -c of -np x 4096: each slot gets
-c / -np positions, and a longer prompt is silently cut to fit (the report flags a long prompt that
the server counted short).

`{port}` in a command is replaced by a free TCP port (and `{host}` by --host); the command is split
like a shell would split it (shlex) but run without a shell. Each server's output goes to
--log-dir (default: a new temporary folder, printed at the end).

Load. For each concurrency level in --clients, that many clients each send --requests-per-client
requests one after another: {"prompt": <text>, "max_tokens": 64, "temperature": 0, "stream": true,
"ignore_eos": true, "stream_options": {"include_usage": true}}. A prompt is --prompt-words random
words from a fixed list (seeded), different for every request, identical for every engine in a
round. After the server is healthy, --warmup requests (not measured) run first.

Per request it records: time to first token (TTFT: request sent -> first content chunk), every
inter-token gap (ITL: time between content chunks), total time (until `data: [DONE]` or the end of
the stream), tokens generated (`usage.completion_tokens` when the server sends it, else the number
of content chunks) and TPOT = (total - TTFT) / (tokens - 1). A content chunk is an SSE event whose
first choice has non-empty `text` (or `delta.content`), or no `finish_reason` yet: a server that
streams one event per token, some of them empty (a partial UTF-8 character, a stop-string prefix),
still counts each token. Errors (connection, HTTP status, `error` events, timeouts, streams that end
without `[DONE]` or a `finish_reason`, no content at all) are counted per request; a request never
waits longer than --request-timeout in all, nor --idle-timeout between two reads.

Per engine and level it reports: aggregate generated tokens/s (all tokens of the level / its wall
time, the median over rounds), TTFT, TPOT and ITL p50/p99 (pooled over rounds; percentiles by linear
interpolation, so p99 of few samples is close to the maximum), errors; the ratio of each engine to
--baseline (default llama-server when given) and of each level to 1 client.

--long-prompt N adds a scenario after the levels: --long-clients (8) clients stream requests one
after another; once every one of them has its first token (plus --long-delay seconds) one extra
request with an N-word prompt is sent (words that are one token each with the Mistral tokenizer,
so N + 1 tokens with BOS; the count the server reports is printed). The clients keep going until
it has finished and each has done at least --requests-per-client requests. Reported: the long
request's TTFT and prompt tokens; the clients' ITL p50/p99/max and TPOT p50/p99 over the whole
scenario; and the stall: the largest gap of any client that overlaps the long request's prefill
(sent -> first token).

Output: progress on stderr; on stdout the exact commands, the machine's 1-minute load average
before and after each engine run, and Markdown tables whose `others` column says how many cores
processes other than the server and this script kept busy during the row's level (from /proc: on a
shared machine a row above --busy-threshold is flagged, and --busy-retries runs it again); all
raw numbers with --json FILE. Exit status 1 when an engine did not start, a request failed or
generated other than max_tokens tokens, or the long prompt came back shorter than sent.
"""

import argparse
import asyncio
import json
import os
import platform
import random
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

# Common English words, each a single token (with its leading space) inside a sentence for the
# Mistral/Llama SentencePiece vocabulary: N words make N prompt tokens (plus BOS).
WORDS = """
the of and to in is was for on that with as by at from his her are be this which or had not
but have they one all were an their has been there more other new when who would first its
after also time only into two over about some out up can them such most these then than him
years made used city may she many school during world where well known three while under people
state between both part like later name team each game well house water family war early life
long found first could world since through before being around work group year area back small
second number great best high night love system place point music south north east west women
men book line left right public head city light power game land town home sea day party law order
side film field company church road river form end line body story way fire air king art mind
music word week month hour money child friend eye face door wall tree bird fish horse dog cat
food bread milk garden color blue green red black white gold silver stone paper glass wood iron
rain snow wind sun moon star cloud hill lake island field forest village street market bank
office room table chair window floor bed kitchen bridge train ship car plane road path gate
""".split()
WORDS = sorted(set(WORDS))

BASE_SEED = 20250301


def percentile(values, q):
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    v = sorted(values)
    if len(v) == 1:
        return v[0]
    pos = (len(v) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def make_prompt(n_words, *key):
    rng = random.Random(":".join(str(k) for k in (BASE_SEED,) + key))
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


# ---------------------------------------------------------------------------------------------
# HTTP/1.1 + SSE client on asyncio streams


class ChunkedDecoder:
    """Incremental decoder of an HTTP/1.1 chunked body; feed() returns the payload bytes so far."""

    def __init__(self):
        self.buf = b""
        self.state = "size"
        self.remaining = 0
        self.finished = False

    def _line(self):
        i = self.buf.find(b"\n")
        if i < 0:
            return None
        line = self.buf[:i].rstrip(b"\r")
        self.buf = self.buf[i + 1:]
        return line

    def feed(self, data):
        self.buf += data
        out = []
        while not self.finished:
            if self.state == "size":
                line = self._line()
                if line is None:
                    break
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.state = "trailer"
                else:
                    self.remaining = size
                    self.state = "data"
            elif self.state == "data":
                if not self.buf:
                    break
                take = self.buf[: self.remaining]
                out.append(take)
                self.buf = self.buf[len(take):]
                self.remaining -= len(take)
                if self.remaining == 0:
                    self.state = "crlf"
            elif self.state == "crlf":
                line = self._line()
                if line is None:
                    break
                self.state = "size"
            else:  # trailer: header lines until an empty one
                line = self._line()
                if line is None:
                    break
                if line == b"":
                    self.finished = True
        return b"".join(out)


class SSEParser:
    """Incremental Server-Sent Events parser: feed() returns complete events as (field, data)."""

    def __init__(self):
        self.buf = b""
        self.data = []
        self.kind = None

    def feed(self, data):
        self.buf += data
        events = []
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                break
            line = self.buf[:i].rstrip(b"\r").decode("utf-8", errors="replace")
            self.buf = self.buf[i + 1:]
            if line == "":
                if self.data or self.kind:
                    events.append((self.kind or "message", "\n".join(self.data)))
                self.data, self.kind = [], None
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                self.data.append(value)
            elif field == "event":
                self.kind = value
            elif field == "error":  # llama-server writes `error: {...}` lines
                self.kind = "error"
                self.data.append(value)
        return events

    def flush(self):
        """Events left when the stream ends without a final blank line."""
        events = self.feed(b"\n\n") if self.buf.strip() or self.data else []
        return events


async def stream_completion(host, port, body, request_timeout, idle_timeout, on_first=None):
    """Sends one streaming completion request; returns its record (times in seconds)."""
    rec = {"ok": False, "error": None, "t_send": time.perf_counter(), "ttft": None, "total": None,
           "tokens": 0, "chunks": 0, "usage_tokens": None, "prompt_tokens": None, "gaps": [],
           "finish_reason": None, "done": False, "t_first": None, "chunk_times": []}
    t0 = rec["t_send"]
    deadline = t0 + request_timeout
    writer = None

    def left():
        return max(0.001, min(idle_timeout, deadline - time.perf_counter()))

    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), left())
        payload = json.dumps(body).encode()
        head = (f"POST /v1/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n").encode()
        writer.write(head + payload)
        await asyncio.wait_for(writer.drain(), left())
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), left())
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for h in lines[1:]:
            if ":" in h:
                k, _, v = h.partition(":")
                headers[k.strip().lower()] = v.strip()
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = int(headers["content-length"]) if "content-length" in headers else None
        if status != 200:
            text = b""
            try:
                text = await asyncio.wait_for(reader.read(65536), min(left(), 5.0))
            except Exception:
                pass
            if chunked:
                text = ChunkedDecoder().feed(text)
            rec["error"] = f"HTTP {status}: {text[:300].decode('utf-8', errors='replace')}"
            return rec
        dechunk = ChunkedDecoder() if chunked else None
        sse = SSEParser()
        got = 0
        last = None
        while True:
            if time.perf_counter() >= deadline:
                rec["error"] = f"timeout after {request_timeout:.0f} s"
                return rec
            try:
                data = await asyncio.wait_for(reader.read(65536), left())
            except asyncio.TimeoutError:
                rec["error"] = f"no data for {idle_timeout:.0f} s" \
                    if time.perf_counter() < deadline else f"timeout after {request_timeout:.0f} s"
                return rec
            now = time.perf_counter()
            eof = not data
            if dechunk is not None:
                data = dechunk.feed(data)
            got += len(data)
            events = sse.feed(data)
            if eof or (dechunk is not None and dechunk.finished) or \
                    (length is not None and got >= length):
                events += sse.flush()
                eof = True
            for kind, text in events:
                if kind == "error":
                    rec["error"] = f"error event: {text[:300]}"
                    return rec
                if text.strip() == "[DONE]":
                    rec["done"] = True
                    break
                try:
                    obj = json.loads(text)
                except ValueError:
                    rec["error"] = f"bad JSON in stream: {text[:200]}"
                    return rec
                if not isinstance(obj, dict):
                    continue
                if "error" in obj:
                    rec["error"] = f"error: {json.dumps(obj['error'])[:300]}"
                    return rec
                usage = obj.get("usage")
                if isinstance(usage, dict):
                    if usage.get("completion_tokens") is not None:
                        rec["usage_tokens"] = usage["completion_tokens"]
                    if usage.get("prompt_tokens") is not None:
                        rec["prompt_tokens"] = usage["prompt_tokens"]
                choices = obj.get("choices") or []
                if not choices:
                    continue
                c = choices[0]
                content = c.get("text")
                if content is None and isinstance(c.get("delta"), dict):
                    content = c["delta"].get("content")
                fr = c.get("finish_reason")
                if fr is not None:
                    rec["finish_reason"] = fr
                if content or (content is not None and fr is None):
                    rec["chunks"] += 1
                    rec["chunk_times"].append(now - t0)
                    if last is None:
                        rec["ttft"] = now - t0
                        rec["t_first"] = now
                        if on_first is not None:
                            on_first()
                    else:
                        rec["gaps"].append(now - last)
                    last = now
            if rec["done"] or eof:
                break
        rec["total"] = time.perf_counter() - t0 if not rec["done"] else now - t0
        rec["tokens"] = rec["usage_tokens"] if rec["usage_tokens"] is not None else rec["chunks"]
        if not rec["done"] and rec["finish_reason"] is None:
            rec["error"] = "stream ended without [DONE] or finish_reason"
        elif rec["chunks"] == 0:
            rec["error"] = "no content chunks"
        else:
            rec["ok"] = True
        return rec
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
            IndexError, asyncio.TimeoutError) as e:
        rec["error"] = rec["error"] or f"{type(e).__name__}: {e}"
        return rec
    finally:
        if rec["total"] is None:
            rec["total"] = time.perf_counter() - t0
        rec["tpot"] = (rec["total"] - rec["ttft"]) / (rec["tokens"] - 1) \
            if rec["ok"] and rec["tokens"] > 1 else None
        if writer is not None:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 2.0)
            except Exception:
                pass


def request_body(args, prompt, max_tokens=None):
    body = {"prompt": prompt, "max_tokens": max_tokens or args.max_tokens, "temperature": 0,
            "stream": True, "ignore_eos": True}
    if not args.no_include_usage:
        body["stream_options"] = {"include_usage": True}
    if args.model_name:
        body["model"] = args.model_name
    body.update(args.extra)
    return body


def slim(rec, t_origin):
    """The JSON form of a request record: times relative to the level's start, rounded."""
    r = lambda x: None if x is None else round(x, 6)  # noqa: E731
    return {"ok": rec["ok"], "error": rec["error"], "start": r(rec["t_send"] - t_origin),
            "ttft": r(rec["ttft"]), "total": r(rec["total"]), "tpot": r(rec["tpot"]),
            "tokens": rec["tokens"], "chunks": rec["chunks"], "usage_tokens": rec["usage_tokens"],
            "prompt_tokens": rec["prompt_tokens"], "finish_reason": rec["finish_reason"],
            "done": rec["done"], "gaps": [r(g) for g in rec["gaps"]]}


async def run_level(args, port, n_clients, round_i):
    t_origin = time.perf_counter()

    async def client(ci):
        out = []
        for k in range(args.requests_per_client):
            prompt = make_prompt(args.prompt_words, "level", round_i, n_clients, ci, k)
            out.append(await stream_completion(args.host, port, request_body(args, prompt),
                                               args.request_timeout, args.idle_timeout))
        return out

    per_client = await asyncio.gather(*(client(i) for i in range(n_clients)))
    wall = time.perf_counter() - t_origin
    recs = [r for c in per_client for r in c]
    return {"clients": n_clients, "wall": round(wall, 6),
            "tokens": sum(r["tokens"] for r in recs if r["ok"]),
            "errors": sum(1 for r in recs if not r["ok"]),
            "requests": [slim(r, t_origin) for r in recs]}


async def run_long(args, port, round_i):
    n = args.long_clients
    t_origin = time.perf_counter()
    started = asyncio.Event()
    long_done = asyncio.Event()
    n_started = [0]

    def first_token():
        n_started[0] += 1
        if n_started[0] == n:
            started.set()

    async def client(ci):
        out = []
        k = 0
        while k < args.requests_per_client or not long_done.is_set():
            prompt = make_prompt(args.prompt_words, "long-bg", round_i, ci, k)
            rec = await stream_completion(args.host, port, request_body(args, prompt),
                                          args.request_timeout, args.idle_timeout,
                                          on_first=first_token if k == 0 else None)
            out.append(rec)
            if k == 0 and rec["ttft"] is None:
                first_token()  # failed before its first token: do not wait for it forever
            k += 1
            if k >= 1000:
                break
        return out

    async def long_request():
        try:
            await asyncio.wait_for(started.wait(), args.request_timeout)
        except asyncio.TimeoutError:
            pass
        await asyncio.sleep(args.long_delay)
        prompt = make_prompt(args.long_prompt, "long", round_i)
        try:
            return await stream_completion(args.host, port, request_body(args, prompt),
                                           args.request_timeout, args.idle_timeout)
        finally:
            long_done.set()

    results = await asyncio.gather(long_request(), *(client(i) for i in range(n)))
    wall = time.perf_counter() - t_origin
    lrec, bg = results[0], [r for c in results[1:] for r in c]
    a = lrec["t_send"]
    b = lrec["t_first"] if lrec["t_first"] is not None else a + (lrec["total"] or 0)
    stall = 0.0
    n_overlap = 0
    for r in bg:
        times = [r["t_send"] + t for t in r["chunk_times"]]
        for t_prev, t_cur in zip(times, times[1:]):
            if t_cur > a and t_prev < b:
                stall = max(stall, t_cur - t_prev)
                n_overlap += 1
    return {"clients": n, "wall": round(wall, 6), "long": slim(lrec, t_origin),
            "long_prefill_window": [round(a - t_origin, 6), round(b - t_origin, 6)],
            "max_gap_during_prefill": round(stall, 6), "gaps_during_prefill": n_overlap,
            "errors": sum(1 for r in bg if not r["ok"]) + (0 if lrec["ok"] else 1),
            "tokens": sum(r["tokens"] for r in bg if r["ok"]),
            "requests": [slim(r, t_origin) for r in bg]}


# ---------------------------------------------------------------------------------------------
# Engine processes


def free_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def health(host, port, timeout=2.0):
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:
        return None


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_snapshot(pgid):
    """(wall, busy CPU seconds of the machine, of process group pgid, of this process); None
    where /proc is not there. The difference says how much of the machine others used."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = (sum(v[:8]) - v[3] - v[4]) / CLK_TCK  # all but idle and iowait
        group = 0.0
        if pgid is not None:
            for d in os.listdir("/proc"):
                if not d.isdigit():
                    continue
                try:
                    with open(f"/proc/{d}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[2]) == pgid:  # fields[0] is the state; utime, stime at 11, 12
                    group += (int(fields[11]) + int(fields[12])) / CLK_TCK
        t = os.times()
        return (time.perf_counter(), busy, group, t.user + t.system)
    except (OSError, ValueError, IndexError):
        return None


def other_load(a, b):
    """Cores kept busy by processes other than the server and this script between snapshots."""
    if a is None or b is None or b[0] <= a[0]:
        return None
    return max(0.0, ((b[1] - a[1]) - (b[2] - a[2]) - (b[3] - a[3])) / (b[0] - a[0]))


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4000))
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
    except OSError:
        return ""


class Engine:
    def __init__(self, name, template, args, log_dir):
        self.name, self.template, self.args, self.log_dir = name, template, args, log_dir
        self.proc = None
        self.port = None
        self.log_path = None
        self.argv = None

    def start(self, round_i):
        self.port = free_port(self.args.host)
        cmd = self.template.replace("{port}", str(self.port)).replace("{host}", self.args.host)
        self.argv = shlex.split(cmd)
        self.log_path = os.path.join(self.log_dir, f"{self.name}.round{round_i}.log")
        log = open(self.log_path, "wb")
        t0 = time.perf_counter()
        try:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        deadline = t0 + self.args.health_timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before "
                                   f"answering /health; log {self.log_path}:\n"
                                   f"{tail(self.log_path)}")
            if health(self.args.host, self.port) == 200:
                return time.perf_counter() - t0
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{self.name}: /health not 200 within {self.args.health_timeout:.0f} s; "
                           f"log {self.log_path}:\n{tail(self.log_path)}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return "exited" if self.proc is not None else "not started"
        how = "SIGTERM"
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(self.args.stop_timeout)
        except subprocess.TimeoutExpired:
            how = "SIGKILL"
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        # anything left in the group (a wrapper's children) goes too
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return how


async def warmup(args, port):
    for k in range(args.warmup):
        prompt = make_prompt(args.prompt_words, "warmup", k)
        rec = await stream_completion(args.host, port, request_body(args, prompt, 8),
                                      args.request_timeout, args.idle_timeout)
        if not rec["ok"]:
            log(f"  warmup request failed: {rec['error']}")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_engine_round(engine, args, round_i):
    out = {"engine": engine.name, "round": round_i, "load_before": os.getloadavg()[0],
           "levels": [], "long": None, "error": None}
    try:
        out["startup_s"] = round(engine.start(round_i), 3)
        out["argv"] = engine.argv
        log(f"[round {round_i}] {engine.name} healthy on port {engine.port} after "
            f"{out['startup_s']:.1f} s (load {out['load_before']:.2f})")
        asyncio.run(warmup(args, engine.port))
        pgid = engine.proc.pid

        def measured(what, run):
            """Runs a level; again (up to --busy-retries) while others used the machine."""
            best = None
            for attempt in range(1 + args.busy_retries):
                c0 = cpu_snapshot(pgid)
                res = asyncio.run(run())
                res["other_load"] = other_load(c0, cpu_snapshot(pgid))
                res["attempt"] = attempt
                busy = (res["other_load"] or 0.0) > args.busy_threshold
                if best is None or (res["other_load"] or 0.0) < (best["other_load"] or 0.0):
                    best = res
                if not busy:
                    break
                if attempt < args.busy_retries:
                    log(f"[round {round_i}] {engine.name} {what}: others used "
                        f"{res['other_load']:.2f} cores, again")
            return best

        for n in args.clients:
            lv = measured(f"clients={n}", lambda: run_level(args, engine.port, n, round_i))
            out["levels"].append(lv)
            ok = [r for r in lv["requests"] if r["ok"]]
            itl = [g for r in ok for g in r["gaps"]]
            log(f"[round {round_i}] {engine.name} clients={n}: {lv['tokens'] / lv['wall']:.1f} "
                f"tok/s, TTFT p50 {ms(percentile([r['ttft'] for r in ok], 50))} ms, "
                f"ITL p50 {ms(percentile(itl, 50))} ms, errors {lv['errors']}, "
                f"others used {fx(lv['other_load'])} cores")
        if args.long_prompt:
            lg = measured("long prompt", lambda: run_long(args, engine.port, round_i))
            out["long"] = lg
            log(f"[round {round_i}] {engine.name} long prompt: TTFT {ms(lg['long']['ttft'])} ms "
                f"({lg['long']['prompt_tokens']} prompt tokens), max stall of the "
                f"{lg['clients']} others {ms(lg['max_gap_during_prefill'])} ms, "
                f"errors {lg['errors']}, others used {fx(lg['other_load'])} cores")
    except RuntimeError as e:
        out["error"] = str(e)
        log(f"[round {round_i}] {e}")
    finally:
        out["stopped_by"] = engine.stop()
        out["load_after"] = os.getloadavg()[0]
        out["log"] = engine.log_path
    return out


# ---------------------------------------------------------------------------------------------
# Report


def ms(x):
    return "-" if x is None else f"{x * 1000:.1f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fx(x, nd=2):
    return "-" if x is None else f"{x:.{nd}f}"


def worst(xs):
    xs = [x for x in xs if x is not None]
    return max(xs) if xs else None


def summarize(runs, engines, args):
    summary = {}
    for e in engines:
        er = [r for r in runs if r["engine"] == e]
        levels = {}
        for n in args.clients:
            lvs = [lv for r in er for lv in r["levels"] if lv["clients"] == n]
            ok = [q for lv in lvs for q in lv["requests"] if q["ok"]]
            itl = [g for q in ok for g in q["gaps"]]
            tps = [lv["tokens"] / lv["wall"] for lv in lvs if lv["wall"] > 0]
            levels[n] = {
                "rounds": len(lvs), "tok_s_per_round": [round(x, 3) for x in tps],
                "tok_s": statistics.median(tps) if tps else None,
                "requests": sum(len(lv["requests"]) for lv in lvs),
                "errors": sum(lv["errors"] for lv in lvs),
                "error_messages": sorted({q["error"] for lv in lvs for q in lv["requests"]
                                          if q["error"]})[:5],
                "short_requests": sum(1 for q in ok if q["tokens"] != args.max_tokens),
                "tokens_per_request": statistics.median([q["tokens"] for q in ok]) if ok else None,
                "prompt_tokens_median": statistics.median(
                    [q["prompt_tokens"] for q in ok if q["prompt_tokens"] is not None] or [0]),
                "ttft_p50": percentile([q["ttft"] for q in ok], 50),
                "ttft_p99": percentile([q["ttft"] for q in ok], 99),
                "tpot_p50": percentile([q["tpot"] for q in ok if q["tpot"] is not None], 50),
                "tpot_p99": percentile([q["tpot"] for q in ok if q["tpot"] is not None], 99),
                "itl_p50": percentile(itl, 50), "itl_p99": percentile(itl, 99),
                "itl_max": max(itl) if itl else None,
                "other_load": [lv.get("other_load") for lv in lvs],
            }
        long = None
        lgs = [r["long"] for r in er if r["long"]]
        if lgs:
            ok = [q for lg in lgs for q in lg["requests"] if q["ok"]]
            itl = [g for q in ok for g in q["gaps"]]
            longs = [lg["long"] for lg in lgs]
            long = {
                "rounds": len(lgs), "clients": args.long_clients,
                "long_ttft": [lq["ttft"] for lq in longs],
                "long_ttft_median": statistics.median(
                    [lq["ttft"] for lq in longs if lq["ttft"] is not None] or [None]),
                "long_prompt_tokens": [lq["prompt_tokens"] for lq in longs],
                "long_errors": [lq["error"] for lq in longs if lq["error"]],
                "itl_p50": percentile(itl, 50), "itl_p99": percentile(itl, 99),
                "itl_max": max(itl) if itl else None,
                "tpot_p50": percentile([q["tpot"] for q in ok if q["tpot"] is not None], 50),
                "tpot_p99": percentile([q["tpot"] for q in ok if q["tpot"] is not None], 99),
                "max_gap_during_prefill": statistics.median(
                    [lg["max_gap_during_prefill"] for lg in lgs]),
                "errors": sum(lg["errors"] for lg in lgs), "requests": len(ok),
                "other_load": [lg.get("other_load") for lg in lgs],
            }
        summary[e] = {"levels": levels, "long": long,
                      "start_errors": [r["error"] for r in er if r["error"]]}
    return summary


def paired_ratio(runs, engine, base, n):
    """Median over rounds of engine/base tok/s measured in the same round (drift cancels)."""
    vals = []
    rounds = sorted({r["round"] for r in runs})
    for rd in rounds:
        def tps(e):
            for r in runs:
                if r["engine"] == e and r["round"] == rd:
                    for lv in r["levels"]:
                        if lv["clients"] == n and lv["wall"] > 0:
                            return lv["tokens"] / lv["wall"]
            return None
        x = ratio(tps(engine), tps(base))
        if x is not None:
            vals.append(x)
    return statistics.median(vals) if vals else None


def report(summary, runs, engines, args, base):
    lines = []
    p = lines.append
    one = 1 if 1 in args.clients else min(args.clients)
    p(f"Clients stream {args.requests_per_client} request(s) each of {args.prompt_words} random "
      f"words, max_tokens {args.max_tokens}, ignore_eos; {args.rounds} round(s), engines "
      "interleaved. "
      "Times in ms; tok/s is the median over rounds, latencies pooled over rounds; 'others' is the "
      "most cores that other processes on the machine kept busy during a round of that row.")
    p("")
    p(f"| engine | clients | tok/s | vs {one} client{'s' if one != 1 else ''} "
      "| TTFT p50 | TTFT p99 | TPOT p50 | TPOT p99 "
      "| ITL p50 | ITL p99 | errors | others |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for e in engines:
        lv = summary[e]["levels"]
        for n in args.clients:
            s = lv[n]
            p(f"| {e} | {n} | {fx(s['tok_s'], 1)} | {fx(ratio(s['tok_s'], lv[one]['tok_s']))}x "
              f"| {ms(s['ttft_p50'])} | {ms(s['ttft_p99'])} "
              f"| {ms(s['tpot_p50'])} | {ms(s['tpot_p99'])} "
              f"| {ms(s['itl_p50'])} | {ms(s['itl_p99'])} | {s['errors']}/{s['requests']} "
              f"| {fx(worst(s['other_load']), 1)} |")
    others = [e for e in engines if e != base]
    if base in engines and others:
        p("")
        p(f"Ratios to {base} (tok/s: higher is better, the median of same-round ratios; "
          "latencies: lower is better):")
        p("")
        p("| engine | clients | tok/s | TTFT p50 | TPOT p50 | TPOT p99 | ITL p99 |")
        p("|---|---:|---:|---:|---:|---:|---:|")
        for e in others:
            for n in args.clients:
                a, b = summary[e]["levels"][n], summary[base]["levels"][n]
                p(f"| {e} ÷ {base} | {n} | {fx(paired_ratio(runs, e, base, n))} "
                  f"| {fx(ratio(a['ttft_p50'], b['ttft_p50']))} "
                  f"| {fx(ratio(a['tpot_p50'], b['tpot_p50']))} "
                  f"| {fx(ratio(a['tpot_p99'], b['tpot_p99']))} "
                  f"| {fx(ratio(a['itl_p99'], b['itl_p99']))} |")
    if args.long_prompt:
        p("")
        p(f"Long prompt: {args.long_clients} clients streaming; one request of {args.long_prompt} "
          "words arrives once all have their first token. ITL/TPOT are the clients' over the whole "
          "scenario; "
          "'stall' is the largest gap of any client overlapping the long request's prefill.")
        p("")
        p("| engine | long prompt tokens | long TTFT | ITL p50 | ITL p99 | ITL max | stall "
          "| TPOT p50 | TPOT p99 | errors | others |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for e in engines:
            lg = summary[e]["long"]
            if not lg:
                p(f"| {e} | - | - | - | - | - | - | - | - | failed | - |")
                continue
            pt = sorted({x for x in lg["long_prompt_tokens"] if x is not None})
            p(f"| {e} | {','.join(map(str, pt)) or '-'} | {ms(lg['long_ttft_median'])} "
              f"| {ms(lg['itl_p50'])} | {ms(lg['itl_p99'])} | {ms(lg['itl_max'])} "
              f"| {ms(lg['max_gap_during_prefill'])} | {ms(lg['tpot_p50'])} | {ms(lg['tpot_p99'])} "
              f"| {lg['errors']} | {fx(worst(lg['other_load']), 1)} |")
    return "\n".join(lines)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", action="append", required=True, metavar="NAME=COMMAND",
                    help="engine to start; {port} (and {host}) are substituted; repeatable")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", default="1,4,8,16", help="concurrency levels, comma separated")
    ap.add_argument("--requests-per-client", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--prompt-words", type=int, default=24)
    ap.add_argument("--long-prompt", type=int, default=0, metavar="N",
                    help="add the long-prompt scenario with an N-word prompt (0: off)")
    ap.add_argument("--long-clients", type=int, default=8)
    ap.add_argument("--long-delay", type=float, default=0.0,
                    help="seconds after all clients' first tokens before the long request")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured requests after start")
    ap.add_argument("--baseline", default=None, help="engine the ratios divide by "
                    "(default: llama-server if given, else the last engine)")
    ap.add_argument("--busy-threshold", type=float, default=0.25, metavar="CORES",
                    help="a level during which other processes kept more cores busy is flagged")
    ap.add_argument("--busy-retries", type=int, default=0, metavar="N",
                    help="run a flagged level again up to N times, keeping the quietest try")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--health-timeout", type=float, default=600.0)
    ap.add_argument("--request-timeout", type=float, default=600.0)
    ap.add_argument("--idle-timeout", type=float, default=120.0)
    ap.add_argument("--stop-timeout", type=float, default=20.0)
    ap.add_argument("--model-name", default=None, help="send this as the request's `model`")
    ap.add_argument("--no-include-usage", action="store_true",
                    help="do not send stream_options.include_usage")
    ap.add_argument("--extra", type=json.loads, default={},
                    help="JSON object merged into every request body")
    ap.add_argument("--json", default=None, metavar="FILE", help="write all raw numbers here")
    ap.add_argument("--log-dir", default=None, help="servers' output (default: a temporary folder)")
    args = ap.parse_args(argv)
    args.clients = [int(x) for x in args.clients.split(",") if x.strip()]
    engines = []
    for spec in args.engine:
        name, eq, cmd = spec.partition("=")
        if not eq or not name or not cmd.strip():
            ap.error(f"--engine wants NAME=COMMAND, got {spec!r}")
        if name in [n for n, _ in engines]:
            ap.error(f"engine name {name!r} given twice")
        engines.append((name, cmd))
    args.engines = engines
    return args


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "host": platform.node(),
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def main(argv):
    args = parse_args(argv)
    names = [n for n, _ in args.engines]
    base = args.baseline or ("llama-server" if "llama-server" in names else names[-1])
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="serve_bench.")
    os.makedirs(log_dir, exist_ok=True)
    engines = [Engine(n, c, args, log_dir) for n, c in args.engines]
    runs = []

    def on_signal(signum, _frame):
        for e in engines:
            e.stop()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    info = machine()
    log(f"{info['cpu']}, {info['cores']} cores, load {os.getloadavg()}")
    try:
        for rd in range(args.rounds):
            order = engines[rd % len(engines):] + engines[: rd % len(engines)]
            for e in order:
                runs.append(run_engine_round(e, args, rd))
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        for e in engines:
            e.stop()

    summary = summarize(runs, names, args)
    print("## Commands")
    print("")
    print("    " + " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv))
    for r in runs:
        if r.get("argv") and r["round"] == 0:
            print(f"    # {r['engine']}: " + " ".join(shlex.quote(a) for a in r["argv"]))
    print("")
    print(f"Machine: {info['cpu']}, {info['cores']} cores, {info['date']}. 1-minute load average "
          "before/after each run: " + ", ".join(
              f"{r['engine']}#{r['round']} {r['load_before']:.2f}/{r['load_after']:.2f}"
              for r in runs))
    print("")
    print(report(summary, runs, names, args, base))
    problems, warnings = [], []
    for e in names:
        s = summary[e]
        for err in s["start_errors"]:
            problems.append(f"{e}: {err.splitlines()[0]}")
        for n, lv in s["levels"].items():
            if lv["errors"]:
                problems.append(f"{e} clients={n}: {lv['errors']} failed: {lv['error_messages']}")
            w = worst(lv["other_load"])
            if w is not None and w > args.busy_threshold:
                warnings.append(f"{e} clients={n}: other processes kept up to "
                                f"{w:.2f} cores busy (numbers suspect)")
            if lv["short_requests"]:
                problems.append(f"{e} clients={n}: {lv['short_requests']} requests generated other "
                                f"than {args.max_tokens} tokens (ignore_eos not honoured?)")
        if s["long"] and s["long"]["long_errors"]:
            problems.append(f"{e} long prompt: {s['long']['long_errors']}")
        if s["long"] and any(x is not None and x < args.long_prompt
                             for x in s["long"]["long_prompt_tokens"]):
            problems.append(f"{e} long prompt: the server counted "
                            f"{s['long']['long_prompt_tokens']} prompt tokens for "
                            f"{args.long_prompt} words (truncated to its context?)")
        w = worst(s["long"]["other_load"]) if s["long"] else None
        if w is not None and w > args.busy_threshold:
            warnings.append(f"{e} long prompt: other processes kept up to {w:.2f} cores "
                            "busy (numbers suspect)")
    if warnings:
        print("")
        print("Warnings:")
        for msg in warnings:
            print(f"- {msg}")
    if problems:
        print("")
        print("Problems:")
        for msg in problems:
            print(f"- {msg}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"argv": sys.argv, "machine": info, "baseline": base,
                       "settings": {k: v for k, v in vars(args).items() if k != "engines"},
                       "engines": dict(args.engines), "summary": summary, "runs": runs},
                      f, indent=1)
        log(f"raw numbers: {args.json}")
    log(f"server logs: {log_dir}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
