#!/bin/bash
# The second command of the README (and of CI, .ci/run): installs the
# Debian 12 packages, builds in ./build (reused when present) and runs the
# whole test suite.  Extra arguments go to `meson test` (e.g. a test name,
# or --timeout-multiplier 2 on a slow machine).  The last lines are meson's
# test summary; the exit status is meson's.
# Environment: BUILD_DIR (default build).
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

bash scripts/install-deps.sh
if [ ! -d "$BUILD_DIR/meson-private" ]; then
  meson setup "$BUILD_DIR"
fi
ninja -C "$BUILD_DIR"
exec meson test -C "$BUILD_DIR" --print-errorlogs "$@"
