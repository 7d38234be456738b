"""Profiles for millions of users: batch generation and store refresh on Ray Data.

The single-process path (:mod:`bump_profiles.profiles.generate`, :mod:`bump_profiles.profiles.refresh`) stays the
reference; this package runs the same split, prompt and provenance code inside Ray Data so that the
work streams through an actor pool (transformers on CPU), ``ray.data.llm`` (vLLM on GPUs) or an
OpenAI-compatible endpoint, and lands in atomically written shards. Ray is the optional extra
``scale``; only this package imports it, through :func:`require_ray`.
"""

from __future__ import annotations

from types import ModuleType

from bump_profiles.errors import ConfigError

EXTRA = "pip install -e '.[scale]'  (or: pip install 'bump-profiles[scale]')"


def require_ray() -> ModuleType:
    """The ``ray`` module with Ray Data, or a ConfigError that names the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401 (Ray Data is what this package needs, not just ray core)
    except ImportError as exc:
        raise ConfigError(f"--engine ray needs Ray Data, which is not installed ({exc}): {EXTRA}") from exc
    return ray
