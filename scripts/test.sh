#!/usr/bin/env bash
# README command 2 (and CI): install, build, and run every test — unit tests, gradient checks,
# kernel-vs-reference checks, and the end-to-end MPI tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cd build
ctest --output-on-failure -j 2 --timeout 900
