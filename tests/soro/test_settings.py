"""Every setting an operator can set is documented in .env.example, and the example parses."""

import re
from pathlib import Path

import pytest

from soro.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def documented() -> dict[str, str]:
    pattern = re.compile(r"^#?\s*(SORO_[A-Z0-9_]+)=(.*)$")
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := pattern.match(line):
            found.setdefault(match.group(1), match.group(2))
    return found


def test_every_setting_is_listed_in_env_example() -> None:
    names = {f"SORO_{name.upper()}" for name in Settings.model_fields}
    missing = names - documented().keys()
    unknown = documented().keys() - names - {"SORO_DATABASE_URL"}
    assert not missing, f"add to .env.example: {sorted(missing)}"
    assert not unknown, f"not a setting: {sorted(unknown)}"


def test_env_example_values_are_the_defaults_and_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    active = {
        name: value
        for name, value in documented().items()
        if not any(line.startswith(f"# {name}=") for line in ENV_EXAMPLE.read_text().splitlines())
    }
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    for name, value in active.items():
        monkeypatch.setenv(name, value)
    parsed = Settings(_env_file=None)  # type: ignore[call-arg]
    for name in active:
        field = name.removeprefix("SORO_").lower()
        assert getattr(parsed, field) == getattr(defaults, field), f"{name} in .env.example is not the default"
