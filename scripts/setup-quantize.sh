#!/usr/bin/env bash
# llm-compressor (FP8 / INT4 export, `soro train quantize`) in its own virtual environment, as vLLM has one: it
# pins a transformers older than the training stack wants. Idempotent: when the stamp matches, it only checks.
#   SORO_QUANTIZE_VENV   where the environment lives (default ~/.cache/soro/quantize-0.14.0.1)
#   PYTHON               the interpreter that creates it (default python3)
set -euo pipefail

version=0.14.0.1
# The CPU build of torch: without the pin pip would take a CUDA build of several GB for llm-compressor.
torch_version=2.13.0
TOOL=setup-quantize
VENV=${SORO_QUANTIZE_VENV:-$HOME/.cache/soro/quantize-$version}
STAMP="$VENV/.soro-quantize-$version-torch-$torch_version"
source "$(dirname "$0")/side-venv.sh"
side_venv_ready && exit 0
venv=$VENV

log "installing llmcompressor==$version with torch==$torch_version (about 1 minute, 1.5 GiB)"
"$venv/bin/pip" install -q "torch==$torch_version" "llmcompressor==$version"

"$venv/bin/python" -c "import llmcompressor, compressed_tensors; from transformers import Gemma3ForCausalLM" \
  || { log "quantisation venv at $venv does not import; delete it and run again"; exit 1; }
touch "$STAMP"
log "llmcompressor $version ready in $venv"
