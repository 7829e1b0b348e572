"""The chat page of `smoe serve` on the demo model in headless Chromium
(tests/e2e/server/chat_page.mjs): a question typed, the streamed answer checked, the
conversation kept, Stop, a screenshot saved to build/test-output/chat_page.png."""
import os
import subprocess

from serve_util import Server, node_or_skip
from smoe_test import SOURCE

node = node_or_skip()
script = os.path.join(SOURCE, "tests", "e2e", "server", "chat_page.mjs")
out_dir = os.path.join(os.path.dirname(os.environ.get("SMOE_BIN", os.path.join(SOURCE, "build", "smoe"))),
                       "test-output")
os.makedirs(out_dir, exist_ok=True)
shot = os.path.join(out_dir, "chat_page.png")
with Server("--api-key", "sk-page", "-t", "2") as s:
    env = dict(os.environ, SMOE_SERVER_URL=s.url, SMOE_SCREENSHOT=shot, SMOE_API_KEY="sk-page")
    r = subprocess.run([node, script], env=env, capture_output=True, text=True, timeout=300)
    print(r.stdout, r.stderr)
    if r.returncode == 0:
        print(f"screenshot: {shot}")
    code = s.stop()
    if code != 0:
        print(f"FAIL: the server exited {code} on SIGTERM")
        r.returncode = 1
raise SystemExit(r.returncode)
