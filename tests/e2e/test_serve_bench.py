"""bench/serve_bench.py against a fake OpenAI-compatible server (this file run with --serve): SSE
events split across HTTP chunks and reads, empty-text token events, usage in the last chunk, error
events, a slow /health, and an engine that never starts. No smoe binary needed."""
import json
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def serve(port, mode):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    born = time.time()

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            ready = time.time() - born > 0.5
            body = b'{"status":"ok"}' if ready else b'{"error":"loading"}'
            self.send_response(200 if ready else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            n = req["max_tokens"]
            rng = random.Random(req["prompt"])
            events = []
            for i in range(n):
                text = "" if i % 5 == 3 else f" w{i}"  # a token whose text is held back
                events.append({"choices": [{"text": text, "index": 0, "finish_reason": None}]})
            if mode == "errors" and "bird" in req["prompt"]:
                sse = b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events[:3])
                sse += b'error: {"code":500,"message":"boom"}\n\n'
            else:
                events.append({"choices": [{"text": "", "index": 0, "finish_reason": "length"}],
                               "usage": {"completion_tokens": n,
                                         "prompt_tokens": len(req["prompt"].split()) + 1}})
                sse = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
                sse += b"data: [DONE]\n\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            pos = 0
            time.sleep(0.02)
            while pos < len(sse):
                step = rng.randint(1, 90)
                piece = sse[pos:pos + step]
                pos += step
                wire = b"%x\r\n" % len(piece) + piece + b"\r\n"
                cut = rng.randint(0, len(wire))  # a TCP read may end inside a chunk header
                self.wfile.write(wire[:cut])
                self.wfile.flush()
                time.sleep(0.001)
                self.wfile.write(wire[cut:])
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()


if len(sys.argv) > 1 and sys.argv[1] == "--serve":
    serve(int(sys.argv[2]), sys.argv[3])
    sys.exit(0)

from smoe_test import SOURCE, Checks  # noqa: E402

c = Checks()
bench = os.path.join(SOURCE, "bench", "serve_bench.py")
me = os.path.abspath(__file__)
py = sys.executable
with tempfile.TemporaryDirectory() as d:
    out = os.path.join(d, "r.json")
    r = subprocess.run([py, bench, "--engine", f"fake={py} {me} --serve {{port}} ok",
                        "--engine", f"flaky={py} {me} --serve {{port}} errors",
                        "--rounds", "2", "--clients", "1,3", "--requests-per-client", "2",
                        "--max-tokens", "16", "--long-prompt", "50", "--long-clients", "3",
                        "--json", out, "--log-dir", d, "--health-timeout", "30",
                        "--request-timeout", "30"], capture_output=True, text=True, timeout=300)
    c.check(r.returncode == 1,
            f"exit code {r.returncode} (the flaky engine's errors make it 1)\n{r.stderr}")
    c.check("| fake | 3 |" in r.stdout, f"table row missing:\n{r.stdout}")
    c.check("fake ÷ flaky" in r.stdout or "flaky ÷ fake" in r.stdout, "ratio table missing")
    res = json.load(open(out))
    fake = res["summary"]["fake"]["levels"]
    for n in ("1", "3"):
        lv = fake[n]
        c.check(lv["errors"] == 0 and lv["requests"] == 2 * 2 * int(n),
                f"fake clients={n}: {lv['errors']} errors of {lv['requests']}: "
                f"{lv['error_messages']}")
        c.check(lv["short_requests"] == 0 and lv["tokens_per_request"] == 16, f"fake tokens: {lv}")
    reqs = [q for run in res["runs"] if run["engine"] == "fake" for lv in run["levels"]
            for q in lv["requests"]]
    c.check(all(q["chunks"] == 16 and len(q["gaps"]) == 15 and q["done"] for q in reqs),
            "every fake request has 16 content chunks, 15 gaps and [DONE]")
    # A loaded client may read a whole stream at once after its first token: the time per output
    # token it saw is then 0, which is a measurement, not an error. Most reads come apart.
    c.check(all(q["prompt_tokens"] == 25 and q["ttft"] > 0 and q["tpot"] is not None
                and q["tpot"] >= 0 for q in reqs), "usage and times recorded")
    c.check(sum(q["tpot"] > 0 for q in reqs) * 2 >= len(reqs),
            f"time per output token above 0 in most requests: {[q['tpot'] for q in reqs]}")
    flaky = res["summary"]["flaky"]["levels"]
    errs = sum(flaky[n]["errors"] for n in ("1", "3"))
    c.check(errs > 0 and any("boom" in m for n in ("1", "3") for m in flaky[n]["error_messages"]),
            f"flaky errors counted: {flaky}")
    lg = res["summary"]["fake"]["long"]
    c.check(lg and lg["rounds"] == 2 and lg["errors"] == 0 and lg["long_ttft_median"] > 0
            and lg["long_prompt_tokens"] == [51, 51] and lg["requests"] >= 3 * 2,
            f"long scenario: {lg}")
    c.check("truncated" not in r.stdout, "no truncation reported for a whole long prompt")

    # a level during which others used the machine is run again and flagged
    r = subprocess.run([py, bench, "--engine", f"fake={py} {me} --serve {{port}} ok",
                        "--rounds", "1", "--clients", "2", "--requests-per-client", "1",
                        "--max-tokens", "4",
                        "--busy-threshold", "-1", "--busy-retries", "1", "--json", out,
                        "--log-dir", d], capture_output=True, text=True, timeout=120)
    lv = json.load(open(out))["runs"][0]["levels"][0]
    c.check(r.returncode == 0 and "again" in r.stderr and "Warnings:" in r.stdout
            and lv["attempt"] in (0, 1) and lv["errors"] == 0,
            f"busy retry: rc {r.returncode} {lv.get('attempt')}\n{r.stdout}\n{r.stderr}")

    # an engine that exits at once is reported, not waited for
    t0 = time.time()
    r = subprocess.run([py, bench, "--engine", "dead=/bin/false {port}", "--rounds", "1",
                        "--clients", "1", "--requests-per-client", "1", "--log-dir", d],
                       capture_output=True, text=True, timeout=120)
    c.check(r.returncode == 1 and "exited with 1" in r.stdout + r.stderr and time.time() - t0 < 30,
            f"dead engine: rc {r.returncode}\n{r.stdout}\n{r.stderr}")
c.done()
