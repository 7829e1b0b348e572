#!/usr/bin/env bash
# The main job: installs dependencies, builds, and runs smoe on its built-in demo model.
# Extra arguments go to `smoe run` (e.g. -p "417+86=").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
exec build/smoe run "$@"
