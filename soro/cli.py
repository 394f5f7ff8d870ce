"""The one ``soro`` command line: serving verbs here, training verbs mounted from ``training``.

Heavy imports (torch, datatrove, the bot stack) happen inside the verbs, so ``soro --help`` stays fast and the
bot and worker images never need the training stack.
"""

from __future__ import annotations

import os

import typer

from soro.logs import setup_logging
from soro.loop import run
from soro.settings import Settings
from training.data.cli import app as data_app
from training.eval.cli import app as eval_app
from training.train_cli import app as train_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Soro: the Tajik assistant and its model.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
stats_app = typer.Typer(no_args_is_help=True, help="How the service and its models fare, from the database.")
app.add_typer(stats_app, name="stats")
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")


def _settings(console: bool = False) -> Settings:
    """The process's settings, with logging set up. ``console``: the terminal is the user interface, so only
    warnings are logged unless SORO_LOG_LEVEL asks for more."""
    settings = Settings()
    quiet = console and "SORO_LOG_LEVEL" not in os.environ
    setup_logging("WARNING" if quiet else settings.log_level)
    return settings


@app.command()
def bot(
    processes: int = typer.Option(
        1, "--processes", min=1, help="Bot processes sharing the HTTP port (webhook mode); the first delivers."
    ),
) -> None:
    """Run the Telegram bot and the SMS endpoint: webhook when SORO_WEBHOOK_URL is set, polling otherwise."""
    settings = _settings()
    if processes == 1:
        from bot.app import run_bot

        run(run_bot(settings))
        return
    if settings.telegram_token.get_secret_value() and not settings.webhook_url:
        raise typer.BadParameter("Telegram polling takes one process: set SORO_WEBHOOK_URL", param_hint="--processes")
    from bot.processes import run_processes

    raise typer.Exit(run_processes(processes))


@app.command()
def worker() -> None:
    """Run an inference worker: queued turns → the OpenAI-compatible server → reply events."""
    from inference.worker import run_worker

    run(run_worker(_settings()))


@app.command()
def chat(user: str = typer.Option("console", help="Who you are in this conversation.")) -> None:
    """Talk to a deployment from a shell, through the same queue, workers and delivery path."""
    from bot.channels.console import run_chat

    raise typer.Exit(run(run_chat(_settings(console=True), user=user)))


@app.command()
def demo() -> None:
    """The whole path offline: SQLite, a local Redis, vLLM (CPU) with a small demo model, and a console chat."""
    from soro.demo import run_demo

    raise typer.Exit(run(run_demo(_settings(console=True))))


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply the Alembic migrations to SORO_DATABASE_URL."""
    from bot.store.migrate import upgrade

    upgrade(_settings().database_url, revision)


@stats_app.command("models")
def stats_models(days: float = typer.Option(7.0, help="Look at answers of the last DAYS days.")) -> None:
    """Each model's answers, 👍/👎 share with its 95 % Wilson interval, notice rate and median latency."""
    from datetime import timedelta

    from bot.stats import models_table, traffic_since
    from bot.store.db import create_engine, session_factory
    from bot.store.models import utcnow

    settings = _settings(console=True)

    async def read() -> str:
        engine = create_engine(settings.database_url)
        try:
            traffic = await traffic_since(session_factory(engine), utcnow() - timedelta(days=days))
        finally:
            await engine.dispose()
        return models_table(traffic.models)

    typer.echo(run(read()))
