"""Where profiles live in production: users, interactions and versioned profiles with provenance."""

from bump_profiles.store.engine import database_url, open_engine, upgrade
from bump_profiles.store.store import (
    Job,
    NewInteraction,
    ProfileStore,
    StaleWriteError,
    StoredInteraction,
    StoredNote,
    StoredProfile,
)

__all__ = ["Job", "NewInteraction", "ProfileStore", "StaleWriteError", "StoredInteraction", "StoredNote",
           "StoredProfile", "database_url", "open_engine", "upgrade"]
