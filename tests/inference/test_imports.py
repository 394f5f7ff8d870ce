"""A worker loads only what it uses: no bot framework, no database layer, no model SDK (memory on small servers)."""

from __future__ import annotations

import subprocess
import sys


def test_the_worker_imports_neither_the_bot_nor_the_database_layer() -> None:
    probe = "import sys, inference.worker; print(sorted({m.split('.')[0] for m in sys.modules} & {'aiogram', 'sqlalchemy', 'openai', 'torch'}))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
