#!/usr/bin/env bash
# Installs the Debian 12 packages efficientllm needs to build, test and run.
# Idempotent: when everything is already installed it returns in well under a second.
#   scripts/setup.sh           build + run + test dependencies
#   scripts/setup.sh --bench   the same (python3-torch, once bench-only, is now a test dependency)
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin
  libhwloc-dev
  libopenblas-dev
  liblapacke-dev  # the SVD of PiSSA's adapter initialisation
  nlohmann-json3-dev
  libxxhash-dev   # checkpoint checksums (XXH3-128)
  libboost-program-options-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libsentencepiece-dev    # SentencePiece tokenizers (tokenizer.model) and their training
  fortunes-min fortunes   # the default English corpus: /usr/share/games/fortunes
  # Debian's python3 (/usr/bin/python3) with: jsonschema, for the tests' validation of every report
  # against docs/report.schema.json; matplotlib, for scripts/plot_scaling.py
  python3 python3-jsonschema python3-matplotlib
  # Test-only: PyTorch, the reference of the Hugging Face import test (tests/hf/) and the CPU peer
  # of bench/ (large; nothing at run time needs it)
  python3-torch
  # The cluster tests: a real Slurm (tests/e2e/slurm.sh) and network namespaces (netns_cluster, faults)
  slurmd slurmctld slurm-client munge iproute2
  # Test-only: headless Chromium renders the HTML report (tests/e2e/html_report.sh)
  chromium
  # Fuzzing with libFuzzer (scripts/fuzz.sh, docs/RELIABILITY.md): Debian's clang and its runtime
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
