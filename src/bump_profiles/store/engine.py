"""Opening the store's database: a SQLite file by default, PostgreSQL from a URL, same code path.

The schema is brought to the newest Alembic revision on first use (``upgrade``), so a fresh file or
an empty PostgreSQL database needs no setup. SQLite runs in WAL mode with a busy timeout; write
transactions start with ``BEGIN IMMEDIATE`` so that two writers queue instead of failing on a lock
upgrade, and ``synchronous=FULL`` so that a committed row survives a crash of the process or machine.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from bump_profiles.errors import ConfigError

MIGRATIONS = Path(__file__).with_name("migrations")


def database_url(target: str) -> str:
    """A SQLAlchemy URL from a URL or a file path; ``postgresql://`` uses psycopg 3."""
    if "://" not in target:
        path = Path(target).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    url = make_url(target)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"store: unsupported database '{url.get_backend_name()}' (use a SQLite path or postgresql://...)")
    return url.render_as_string(hide_password=False)


def open_engine(target: str) -> Engine:
    """An engine for ``target`` (path or URL) with the schema migrated to the newest revision."""
    url = database_url(target)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
        _sqlite_pragmas(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    upgrade(engine)
    return engine


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # the driver's own BEGIN handling is off; we emit BEGIN below
        cur = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "busy_timeout=60000", "foreign_keys=ON", "synchronous=FULL"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the package's Alembic migrations up to ``revision`` (idempotent; safe for concurrent starts)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect().execution_options(write=True) as conn:
        with conn.begin():
            if conn.dialect.name == "postgresql":  # two services starting at once migrate one after the other
                conn.execute(text("SELECT pg_advisory_xact_lock(1702171)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
