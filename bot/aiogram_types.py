"""aiogram's Telegram types, each built the first time it is used instead of all at import.

aiogram declares its ~400 pydantic types ``defer_build``, then builds every one of them when its package is
imported (``model_rebuild`` with the namespace that resolves their forward references), and each validator
holds its own copy of the schemas of every type inside it: most of the memory and time that ``import aiogram``
costs (bench/RESULTS.md), for types a bot mostly never meets. A bot uses a dozen (``Update``, the ``Message``
inside it, the methods it calls and their ``Response``). ``defer`` keeps that namespace and skips
the building; each type is then built with it when it first validates or serialises (pydantic's deferred
build calls ``model_rebuild``, which the three base classes here answer).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from pydantic import BaseModel

_PYDANTIC_REBUILD: Any = BaseModel.__dict__["model_rebuild"].__func__


def defer() -> None:
    """The next ``import aiogram`` builds none of its types; nothing changes when aiogram is imported already."""
    if "aiogram" not in sys.modules and not any(isinstance(f, _DeferringFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _DeferringFinder())


class _DeferringFinder:
    """Finds aiogram as Python would, then has its loader run the package with its types' building skipped."""

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name != "aiogram":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _DeferringLoader(spec.loader)  # type: ignore[assignment]
        return spec


class _DeferringLoader:
    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:  # resources, source: as the real loader has them
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        result: ModuleType | None = self._loader.create_module(spec)
        return result

    def exec_module(self, module: ModuleType) -> None:
        kept: list[Mapping[str, Any]] = []  # the namespace aiogram passes to each of its types' rebuild

        def skip_types(cls: type[BaseModel], /, **options: Any) -> bool | None:
            base = sys.modules.get("aiogram.types.base")
            namespace = options.get("_types_namespace")
            if base is not None and issubclass(cls, base.TelegramObject) and namespace and "Update" in namespace:
                kept[:] = [namespace]
                return None
            # Any other model rebuilt meanwhile: as pydantic would, one frame further from its caller.
            options["_parent_namespace_depth"] = options.get("_parent_namespace_depth", 2) + 1
            return _PYDANTIC_REBUILD(cls, **options)  # type: ignore[no-any-return]

        setattr(BaseModel, "model_rebuild", classmethod(skip_types))  # noqa: B010
        try:
            self._loader.exec_module(module)
        finally:
            setattr(BaseModel, "model_rebuild", classmethod(_PYDANTIC_REBUILD))  # noqa: B010
        if kept:
            _build_with(kept[0])


def _build_with(types: Mapping[str, Any]) -> None:
    from aiogram.methods.base import Response, TelegramMethod
    from aiogram.types.base import TelegramObject

    def rebuild(cls: type[BaseModel], /, **options: Any) -> bool | None:
        options["_types_namespace"] = {**types, **(options.get("_types_namespace") or {})}
        return _PYDANTIC_REBUILD(cls, **options)  # type: ignore[no-any-return]

    # A method's fields and the results in its Response hold types too.
    for base in (TelegramObject, TelegramMethod, Response):
        setattr(base, "model_rebuild", classmethod(rebuild))  # noqa: B010
