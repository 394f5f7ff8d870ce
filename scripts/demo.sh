#!/usr/bin/env bash
# Set up the serving stack and vLLM (CPU) on a fresh machine, then start the offline demo.
#   scripts/demo.sh                 interactive on a terminal
#   echo "Салом" | scripts/demo.sh  answers each line of stdin, then exits
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
exec .venv/bin/soro demo
