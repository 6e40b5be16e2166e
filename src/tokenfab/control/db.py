"""Database engines for the control plane: one SQLite file (WAL, fsync on commit) or PostgreSQL by URL.

Durability is the store's first duty: a submission is acknowledged only after its transaction is
committed, so SQLite runs with ``journal_mode=WAL`` and ``synchronous=FULL`` (every commit is fsynced to
the write-ahead log) and a busy timeout so concurrent readers wait instead of failing. PostgreSQL
commits are durable by default (``synchronous_commit=on``).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def normalize_url(db_url: str) -> str:
    """Accept `postgresql://` and `postgres://` URLs and route them to the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if db_url.startswith(prefix):
            return "postgresql+psycopg://" + db_url[len(prefix) :]
    return db_url


def is_sqlite(db_url: str) -> bool:
    return normalize_url(db_url).startswith("sqlite")


def make_engine(db_url: str) -> Engine:
    """An engine for `db_url` with the durability settings above applied to every connection."""
    url = normalize_url(db_url)
    if is_sqlite(url):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_size=20, max_overflow=40, pool_pre_ping=True)  # ≥ the server's threadpool


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def upgrade_to_head(engine: Engine) -> None:
    """Run the Alembic migrations up to the newest revision on `engine` (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
