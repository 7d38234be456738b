"""Alembic migrations of the store (applied by :func:`bump_profiles.store.engine.upgrade`)."""
