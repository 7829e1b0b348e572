#!/usr/bin/env bash
# The main job: installs what the build needs, builds the smoe executable (only it: no tests, no
# benchmarks), and runs it on its built-in demo model. Extra arguments go to `smoe run`
# (e.g. -p "417+86="). The build's output goes to build/build.log; a progress line shows instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-test-tools
mkdir -p build
log=build/build.log
echo "demo: building smoe (log: $log)" >&2
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >"$log" 2>&1 ||
  { tail -n 30 "$log" >&2; exit 1; }
ninja -C build -j"$(nproc)" smoe >>"$log" 2>&1 &
build=$!
while kill -0 "$build" 2>/dev/null; do
  if [ -t 2 ]; then
    step=$(grep -o '^\[[0-9]*/[0-9]*\]' "$log" | tail -n 1 || true)
    printf '\r  %s' "$step" >&2
  fi
  sleep 1
done
if ! wait "$build"; then
  printf '\ndemo: the build failed; the end of %s:\n' "$log" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
[ -t 2 ] && printf '\r' >&2
exec build/smoe run "$@"
