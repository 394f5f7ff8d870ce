"""The ``soro`` command line's own checks, before any service starts."""

from __future__ import annotations

from typer.testing import CliRunner

from soro.cli import app


def test_several_bot_processes_need_a_webhook() -> None:
    # Telegram hands updates to one poller at a time: several polling processes would fight over them.
    env = {"SORO_TELEGRAM_TOKEN": "123456:TEST", "SORO_WEBHOOK_URL": "", "SORO_LOG_LEVEL": "WARNING"}
    result = CliRunner().invoke(app, ["bot", "--processes", "2"], env=env)
    assert result.exit_code == 2
    assert "SORO_WEBHOOK_URL" in result.output


def test_bot_processes_are_at_least_one() -> None:
    result = CliRunner().invoke(app, ["bot", "--processes", "0"])
    assert result.exit_code == 2
