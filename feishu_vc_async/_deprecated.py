"""Old public names that keep working for one release, with a ``DeprecationWarning``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["module_getattr"]


def module_getattr(module: str, renamed: Mapping[str, tuple[str, Any]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``renamed[name] = (what to use instead, value)``."""

    def __getattr__(name: str) -> Any:
        found = renamed.get(name)
        if found is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        instead, value = found
        warnings.warn(
            f"{module}.{name} is deprecated: use {instead}; the old name goes in the next "
            "release",
            DeprecationWarning,
            stacklevel=2,
        )
        return value

    return __getattr__
