"""Runs `smoe serve` for a test: on a free port, until it prints its ready line; stops it."""
import http.client
import json
import os
import re
import signal
import subprocess
import tempfile
import time

from smoe_test import SMOE, skip


class Server:
    """`smoe serve --port 0 ARGS...`; url is known once it printed its ready line."""

    def __init__(self, *args, binary=None, ready_timeout=120, env=None):
        self.binary = binary or SMOE
        if not self.binary:
            skip("SMOE_BIN is not set (run through ctest)")
        self.log = tempfile.NamedTemporaryFile(prefix="smoe-serve-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([self.binary, "serve", "--port", "0", *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        self.url = None
        deadline = time.time() + ready_timeout
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"ready at (http://[^ ]+)", line)
            if m:
                self.url = m.group(1)
                break
        if not self.url:
            self.proc.kill()
            raise AssertionError(f"smoe serve did not become ready:\n{self.stderr()}")
        m = re.match(r"http://([^:/]+):(\d+)", self.url)
        self.host, self.port = m.group(1), int(m.group(2))

    def stderr(self):
        with open(self.log.name) as f:
            return f.read()

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def threads(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/task"))

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers, body text)."""
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        c.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        r = c.getresponse()
        out = (r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace"))
        c.close()
        return out

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Sends `sig` and waits; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"smoe serve did not stop within {timeout} s after {sig!r}")
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.unlink(self.log.name)


def node_or_skip():
    """The node binary and the tests' npm packages, or skip saying what is missing."""
    import shutil
    from smoe_test import SOURCE
    node = shutil.which("node")
    if not node:
        skip("node is not installed (scripts/setup.sh installs it)")
    modules = os.path.join(SOURCE, "tests", "e2e", "server", "node_modules")
    if not os.path.isdir(os.path.join(modules, "openai")):
        skip(f"the test's npm packages are not in {modules} (scripts/setup.sh installs them)")
    return node
