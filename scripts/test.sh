#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run the whole test suite (slow tests included).
#   scripts/test.sh [pytest args…]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
