#!/usr/bin/env python3
"""Time to first token of each turn of a long chat: what prefix sharing buys.

One client holds a --turns-turn conversation with a server through POST /v1/chat/completions
(streamed, with usage): each user message is --words random words, each answer --answer tokens
(ignore_eos), and every turn sends the whole conversation so far. With prefix sharing the server
reads only the new turn; without it, the whole conversation again. Each engine is started from
its command (`{port}` replaced by a free port), and stopped after its chat. Standard library only.

  /usr/bin/python3 bench/chat_turns.py \\
      --engine "prefix cache=build/smoe serve -m MODEL --port {port} -t 2 --no-mmap --chat-template mistral" \\
      --engine "no prefix cache=build/smoe serve -m MODEL --port {port} -t 2 --no-mmap --chat-template mistral --no-prefix-cache"
"""
import argparse
import http.client
import json
import random
import shlex
import socket
import subprocess
import sys
import time

WORDS = ("the of and to in is was for on that with as by at from his an were are which this be "
         "had not have but one their first after new two has also its other they time years more "
         "when who between during into city most may only three over world some used many such "
         "under would then made later while these where well each both river great water").split()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become healthy")


def turn(port, messages, answer_tokens):
    """(ttft seconds, answer text, usage) of one streamed chat turn."""
    body = json.dumps({"messages": messages, "max_tokens": answer_tokens, "ignore_eos": True,
                       "temperature": 0, "stream": True, "stream_options": {"include_usage": True}})
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.perf_counter()
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    ttft, text, usage = None, "", None
    for raw in r:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        usage = chunk.get("usage") or usage
        for ch in chunk.get("choices", []):
            piece = ch.get("delta", {}).get("content")
            if piece is not None and ttft is None and (piece or ch.get("finish_reason") is None):
                if piece:
                    ttft = time.perf_counter() - t0
            text += piece or ""
    c.close()
    return ttft, text, usage


def chat(port, args):
    rng = random.Random(args.seed)
    messages, rows = [], []
    for t in range(args.turns):
        messages.append({"role": "user", "content": " ".join(rng.choice(WORDS) for _ in range(args.words))})
        ttft, text, usage = turn(port, messages, args.answer)
        messages.append({"role": "assistant", "content": text})
        u = usage or {}
        rows.append({"turn": t + 1, "ttft": ttft, "prompt": u.get("prompt_tokens"),
                     "cached": (u.get("prompt_tokens_details") or {}).get("cached_tokens")})
    return rows


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", action="append", required=True, metavar="NAME=COMMAND")
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--words", type=int, default=40, help="words per user message")
    ap.add_argument("--answer", type=int, default=48, help="tokens per answer")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    results = {}
    for spec in args.engine:
        name, cmd = spec.split("=", 1)
        port = free_port()
        argv_ = shlex.split(cmd.replace("{port}", str(port)))
        print(f"{name}: {' '.join(argv_)}", file=sys.stderr)
        p = subprocess.Popen(argv_, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_healthy(port)
            turn(port, [{"role": "user", "content": "warm up"}], 4)
            results[name] = chat(port, args)
        finally:
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    names = list(results)
    print("| turn | prompt tokens | " + " | ".join(f"{n}: cached, TTFT" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for i in range(args.turns):
        cells = [f"{results[n][i]['cached']}, {results[n][i]['ttft'] * 1000:.0f} ms" for n in names]
        print(f"| {i + 1} | {results[names[0]][i]['prompt']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
