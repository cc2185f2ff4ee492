"""Names a package exports but imports only when first used (PEP 562 module ``__getattr__``).

Used where importing a stage eagerly would pull in heavy libraries that most
callers do not need (torch for a text query on ONNX Runtime, astroquery for a
search that only links to the viewer).
"""
from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, where: dict[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package``: each name in ``where`` comes from its submodule on first use.

    ``where`` maps an exported name to the submodule (relative to ``package``)
    that defines it; ``namespace`` is the package's ``globals()``, where a
    name is kept once imported so the next access is a plain lookup.

    Examples
    --------
    >>> ns = {"__all__": ["JSONDecoder"]}
    >>> getattr_, dir_ = lazy_exports("json", {"JSONDecoder": "decoder"}, ns)
    >>> getattr_("JSONDecoder").__module__, "JSONDecoder" in ns
    ('json.decoder', True)
    """

    def __getattr__(name: str):
        if name in where:
            value = getattr(importlib.import_module(f".{where[name]}", package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
