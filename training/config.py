"""Typed run configs: YAML files loaded into (nested) dataclasses, strictly.

A misspelt key in a training config would otherwise be silently ignored and the run would quietly use a
default, so every unknown key, missing required key and wrongly typed value is an error that names its path
(``train.learning_rate: expected float, got 'abc'``).

    from training.config import load_config
    config = load_config("configs/train/cpt-1b.yaml", CptConfig)

Command lines override any key with ``--set dotted.key=value`` (the value read as YAML: ``100``, ``true``,
``[a.jsonl, b.jsonl]``), as litgpt and TRL users expect; an override of a key the schema does not have is an
error like any other unknown key::

    config = load_config("configs/train/cpt-1b.yaml", CptConfig, overrides=["train.max_steps=100"])

Supported field types: ``str``, ``int``, ``float`` (ints are accepted), ``bool``, ``Path``, ``Literal[...]``,
``X | None``, ``list[X]``, ``dict[str, X]`` and nested dataclasses. Relative paths stay relative to the working
directory, as on the command line.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

T = TypeVar("T")
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ConfigError(ValueError):
    """A config file that does not match its schema; the message names the offending key."""


def load_config(path: str | Path, cls: type[T], *, overrides: Sequence[str] = ()) -> T:
    """Read the YAML file at ``path`` into an instance of the dataclass ``cls``, with ``--set`` overrides."""
    path = Path(path)
    raw = read_yaml(path, overrides)
    try:
        return config_from_dict(raw, cls)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def read_yaml(path: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The mapping in the YAML file at ``path``, with each ``dotted.key=value`` of ``overrides`` applied."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top")
    return apply_overrides(raw, overrides)


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``raw`` with ``key.sub=value`` set for each override (``tasks.0.limit=5`` indexes a list)."""
    result: dict[str, Any] = copy.deepcopy(raw)
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {override!r}: expected dotted.key=value")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {override!r}: the value is not valid YAML: {exc}") from exc
        parts = key.strip().split(".")
        node: Any = result
        for depth, part in enumerate(parts[:-1]):
            node = _child(node, part, ".".join(parts[: depth + 1]), override)
        _assign(node, parts[-1], value, override)
    return result


def _child(node: Any, part: str, where: str, override: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, where, override)]
    if not isinstance(node, dict):
        raise ConfigError(f"--set {override!r}: {where} is not a section")
    if node.get(part) is None:
        node[part] = {}
    return node[part]


def _assign(node: Any, part: str, value: object, override: str) -> None:
    if isinstance(node, list):
        node[_index(node, part, part, override)] = value
    elif isinstance(node, dict):
        node[part] = value
    else:
        raise ConfigError(f"--set {override!r}: cannot set {part!r} inside a value")


def _index(node: list[Any], part: str, where: str, override: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"--set {override!r}: {where}: expected a list index below {len(node)}")
    return int(part)


def config_from_dict(raw: object, cls: type[T]) -> T:
    """Build ``cls`` from plain data (as parsed from YAML or JSON), with the same checks as :func:`load_config`."""
    return typing.cast(T, _convert(raw, cls, ""))


def config_to_dict(config: object) -> dict[str, Any]:
    """Plain data for a config (paths as strings), e.g. to record it next to a run's outputs."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"{config!r} is not a dataclass instance")
    return typing.cast(dict[str, Any], _plain(dataclasses.asdict(config)))


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _convert(value: object, annotation: Any, where: str) -> object:
    origin = get_origin(annotation)
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return _convert_dataclass(value, annotation, where)
    if origin in (Union, types.UnionType):
        options = get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError("; ".join(errors))
    if origin is Literal:
        allowed = get_args(annotation)
        if value not in allowed:
            raise ConfigError(f"{_name(where)}: expected one of {list(allowed)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{_name(where)}: expected a list, got {value!r}")
        (item_type,) = get_args(annotation)
        return [_convert(item, item_type, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{_name(where)}: expected a mapping, got {value!r}")
        _, item_type = get_args(annotation)
        return {str(key): _convert(item, item_type, f"{where}.{key}") for key, item in value.items()}
    return _convert_scalar(value, annotation, where)


def _convert_scalar(value: object, annotation: Any, where: str) -> object:
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        # YAML 1.1 reads 5e-5 (no dot) as a string; a learning rate written that way is still meant as a number.
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif annotation is Path:
        if isinstance(value, str | Path):
            return Path(value)
    else:
        raise ConfigError(f"{_name(where)}: unsupported field type {annotation!r}")
    type_name = getattr(annotation, "__name__", str(annotation))
    raise ConfigError(f"{_name(where)}: expected {type_name}, got {value!r}")


def _convert_dataclass(value: object, cls: type, where: str) -> object:
    if not isinstance(value, dict):
        raise ConfigError(f"{_name(where)}: expected a mapping of {cls.__name__} fields, got {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown key(s) {', '.join(prefix + str(key) for key in unknown)}; "
            f"{_name(where)} accepts {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, field in fields.items():
        path = f"{where}.{name}" if where else name
        if name in value:
            kwargs[name] = _convert(value[name], hints[name], path)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{path}: required key is missing")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        # __post_init__ checks (ranges, combinations of options) report through the same error type.
        raise ConfigError(f"{_name(where)}: {exc}") from exc


def _name(where: str) -> str:
    return where or "config"
