#!/usr/bin/env bash
# Installs what smoe needs to build and test on Debian (idempotent: installs only what is missing).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libfmt-dev nlohmann-json3-dev libcli11-dev          # formatting, JSON, command line
  libcpp-httplib-dev                                   # the server's HTTP (smoe serve)
  libgtest-dev libgmock-dev libbenchmark-dev           # tests and micro-benchmarks
  python3 python3-numpy python3-sentencepiece          # test oracles
  clang-format
)
# The server's end-to-end tests: the OpenAI client (Node.js) and the chat page in a browser.
# `scripts/setup.sh --no-test-tools` leaves them out (the demo does not need them).
# Commands, not package names: a machine may have Node.js (with its own npm) from elsewhere.
if [ "${1:-}" != "--no-test-tools" ]; then
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
  command -v chromium >/dev/null || packages+=(chromium)
  command -v ss >/dev/null || packages+=(iproute2)  # ss: the load test reads the listen backlog
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The tests' npm packages, pinned in tests/e2e/server/package-lock.json (installed again only when
# the lock changed).
if [ "${1:-}" != "--no-test-tools" ]; then
  cd "$(dirname "$0")/../tests/e2e/server"
  if ! cmp -s package-lock.json node_modules/.smoe-lock 2>/dev/null; then
    echo "setup: installing the server tests' npm packages" >&2
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
    cp package-lock.json node_modules/.smoe-lock
  fi
fi
