"""`smoe serve` on the demo model, driven by the real `openai` npm client
(tests/e2e/server/openai_client.mjs): every endpoint, field and error status it checks."""
import os
import subprocess

from serve_util import Server, node_or_skip
from smoe_test import SOURCE

node = node_or_skip()
script = os.path.join(SOURCE, "tests", "e2e", "server", "openai_client.mjs")
with Server("--api-key", "sk-test", "--max-body", "65536", "-t", "2") as main, \
        Server("--max-seqs", "1", "--max-queue", "1", "-t", "1") as busy:
    env = dict(os.environ, SMOE_SERVER_URL=main.url, SMOE_BUSY_URL=busy.url, SMOE_API_KEY="sk-test")
    r = subprocess.run([node, script], env=env, capture_output=True, text=True, timeout=600)
    print(r.stdout, r.stderr)
    for s, name in ((main, "main"), (busy, "busy")):
        code = s.stop()
        if code != 0:
            print(f"FAIL: the {name} server exited {code} on SIGTERM:\n{s.stderr()}")
            r.returncode = 1
raise SystemExit(r.returncode)
