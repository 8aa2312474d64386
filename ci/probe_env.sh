#!/usr/bin/env bash
# The CPU venv ci/probe_front_door.py and ci/probe_imports.py run in (Python 3.11: the CPU build of
# torch 2.13.0 lies on this kind of host's disk), and the pinned transformers beside it, from the GPU
# runtime's stage (ci/build_gpu_runtime.sh): the newest transformers' configs clash with sglang 0.5.17's.
#   bash ci/probe_env.sh [VENV] [TRANSFORMERS_DIR]   (defaults /tmp/probe-venv, /tmp/tf512/site)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-/tmp/probe-venv}; TF=${2:-/tmp/tf512/site}
[ -d .rt/stage/deps/site/transformers ] || { echo "error: no .rt/stage/deps/site/transformers (run bash ci/build_gpu_runtime.sh)" >&2; exit 1; }
python3.11 -m venv "$VENV"
"$VENV/bin/pip" install -q torch==2.13.0 pydantic fastapi orjson numpy requests aiohttp psutil packaging pyzmq msgspec \
  uvicorn uvloop einops tqdm huggingface_hub safetensors "tokenizers==0.22.2" sentencepiece jinja2 pyyaml regex filelock \
  prometheus-client pillow dill "openai==2.6.1" jsonschema loguru
"$VENV/bin/pip" install -q --no-deps .rt/wheels/compressed_tensors-*.whl
mkdir -p "$TF" && rm -rf "$TF/transformers" && cp -r .rt/stage/deps/site/transformers "$TF/"
echo "probe venv: $VENV; transformers: $TF"
