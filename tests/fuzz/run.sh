#!/usr/bin/env bash
# A short fuzzing run of one target (the test suite's fuzz.* tests): SECONDS of mutations of the
# seed corpus tests/fuzz/seeds/NAME. New inputs libFuzzer finds go to a scratch directory, never
# into the source tree; scratch files of the targets go to /dev/shm when it exists.
#   tests/fuzz/run.sh BIN SEED_DIR SECONDS [more libFuzzer flags...]
set -euo pipefail
bin=$1 seeds=$2 seconds=$3
shift 3
work=$(mktemp -d)
scratch_parent=/tmp
if [[ -d /dev/shm && -w /dev/shm ]]; then scratch_parent=/dev/shm; fi
scratch=$(mktemp -d -p "$scratch_parent")
trap 'rm -rf -- "$work" "$scratch"' EXIT
export TMPDIR=$scratch
# -timeout: one input taking over 10 s is a stall; -rss_limit_mb: a huge allocation from a small
# file (a header promising terabytes) is a defect too.
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@" "$work" "$seeds"
