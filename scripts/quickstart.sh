#!/usr/bin/env bash
# README command 1: install, build, and pretrain the quickstart GPT on 2 MPI ranks (1–3 minutes
# on 2 cores). Prints the summary table and where the report is.
#   scripts/quickstart.sh [extra efficientllm run options, e.g. --out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
if [[ $(id -u) -eq 0 ]]; then  # Open MPI refuses to run as root unless told it is intended
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mpirun -np 2 build/efficientllm run jobs/quickstart.json "$@"
