"""The ``bump-profiles`` subcommands, one module each, each with ``register(subparsers)``."""

from __future__ import annotations

import importlib
from collections.abc import Iterator


class Choices:
    """An argparse ``choices`` read from a registry (a tuple or dict of names) in a library module.

    The module is imported only when argparse first checks a value or prints the choices, so building
    the parser (``bump-profiles --help``) stays instant, and the names are never retyped in the CLI.
    """

    def __init__(self, module: str, registry: str):
        self.module, self.registry = module, registry

    def _names(self) -> tuple[str, ...]:
        return tuple(getattr(importlib.import_module(self.module), self.registry))

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, value: object) -> bool:
        return value in self._names()

    def __repr__(self) -> str:
        return f"Choices({self.module}.{self.registry})"
