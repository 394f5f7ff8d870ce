"""``python -m bench.soro_main ARGS``: the ``soro`` command as a module, so a profiler can run it."""

from soro.cli import app

if __name__ == "__main__":
    app()
