"""``bump-profiles serve``: the HTTP API over the profile store (FastAPI; OpenAPI docs at /docs)."""

from bump_profiles.serve.app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]
