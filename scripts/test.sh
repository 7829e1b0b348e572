#!/usr/bin/env bash
# The test command: installs dependencies, builds, runs the whole suite (Release), then the unit
# tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
ctest --test-dir build --output-on-failure -j2 --timeout 900
scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSMOE_SANITIZE=ON -DSMOE_BUILD_BENCH=OFF
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j2 --timeout 900 -R '^(smoe_tests|[A-Z])'
