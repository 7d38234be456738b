"""Fixtures of the serving tests: a store URL for each backend, SQLite always, PostgreSQL when a
throwaway server can be started here (skipped with the reason otherwise)."""

from __future__ import annotations

import itertools
import os

import pytest

from serving.postgres import Cluster, create_database, start_cluster

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = start_cluster()
    if isinstance(cluster, str):
        if os.environ.get("BUMP_REQUIRE_POSTGRES"):
            pytest.fail(f"BUMP_REQUIRE_POSTGRES is set but {cluster}")
        pytest.skip(cluster)
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """A fresh, empty database: a SQLite file, or a new database in the throwaway PostgreSQL cluster."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    return create_database(cluster, f"test_{os.getpid()}_{next(_counter)}")
