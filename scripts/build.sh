#!/usr/bin/env bash
# Installs what is missing, configures and builds efficientllm (Release) into build/.
#   scripts/build.sh [extra cmake -D options]      e.g. -DELLM_NATIVE=OFF for portable binaries
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j "$(nproc)"
