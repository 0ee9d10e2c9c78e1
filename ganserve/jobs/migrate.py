"""The job database's schema, brought to the newest Alembic revision at start.

Several processes may start at once (API workers, a worker, replicas): on PostgreSQL an
advisory lock serialises them; on SQLite (one machine) a file lock beside the database does.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from ganserve.locks import file_lock

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
PG_LOCK_KEY = 0x67616E73     # "gans": one advisory lock id for ganserve's migrations


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _sqlite_lock(engine: Engine) -> contextlib.AbstractContextManager[None]:
    db = engine.url.database
    if not db or db == ":memory:":
        return contextlib.nullcontext()
    return file_lock(Path(f"{db}.migrate.lock"))


def upgrade(engine: Engine) -> None:
    """Apply the migrations the database lacks (a no-op when it is current)."""
    if engine.dialect.name == "sqlite":
        with _sqlite_lock(engine), engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
    else:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
            command.upgrade(alembic_config(conn), "head")
    log.debug("job records at schema revision %s (%s)", current_revision(engine),
              engine.url.render_as_string(hide_password=True))


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
