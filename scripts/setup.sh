#!/usr/bin/env bash
# Set up a fresh machine for Soro: system packages, the project's virtual environment, and vLLM (CPU) in its
# own virtual environment. Idempotent: a second run only checks.
#   scripts/setup.sh            serving + demo
#   scripts/setup.sh --dev      also the training stack and the test tools
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[[ "${1:-}" == "--dev" ]] && dev=1

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# System packages: Redis for the demo; Kannel, its fake SMSC and Prometheus for the tests.
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
if (( dev )); then
  command -v bearerbox >/dev/null || need_apt+=(kannel)
  [[ -x /usr/lib/kannel/test/fakesmsc ]] || need_apt+=(kannel-extras)
  command -v promtool >/dev/null || need_apt+=(prometheus)
  # libmagic for python-magic, which datatrove's WARC reader uses to recognise HTML (corpus curation).
  ldconfig -p | grep -q 'libmagic\.so\.1' || need_apt+=(libmagic1)
fi
if (( ${#need_apt[@]} )); then
  log "installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The project's own environment.
python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  "$python" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
extras=""
(( dev )) && extras="[train,dev]"
stamp=".venv/.installed${extras}"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
  log "installing soro${extras}"
  .venv/bin/pip install -q -e ".${extras}"
  touch "$stamp"
fi

# vLLM (CPU build) in its own environment: it pins its own torch and transformers, as its container does.
bash scripts/setup-vllm.sh

# llm-compressor (`soro train quantize` and its tests) in its own environment too: it pins an older transformers.
if (( dev )); then
  bash scripts/setup-quantize.sh
fi
