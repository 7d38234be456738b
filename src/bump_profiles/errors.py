"""Error types that travel: the CLI prints them in one line, without a traceback."""

from __future__ import annotations


class BumpError(Exception):
    """Base class for every error the tool reports to a user as a plain message."""


class DataError(BumpError, ValueError):
    """Bad input data. The message names the file, the record (or line) and the problem."""

    def __init__(self, problem: str, *, path: object = None, record: object = None, field: str | None = None):
        self.problem = problem
        self.path = None if path is None else str(path)
        self.record = record
        self.field = field
        where = []
        if self.path is not None:
            where.append(self.path)
        if record is not None:
            where.append(f"record {record}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{': '.join(where)}: {problem}" if where else problem)


class ConfigError(BumpError, ValueError):
    """A bad configuration value, caught before any model loads."""


class ModelError(BumpError, RuntimeError):
    """A model or bundled model package that cannot be loaded."""


class RemoteError(BumpError, RuntimeError):
    """A remote endpoint that kept failing after retries, or answered with something unusable."""
