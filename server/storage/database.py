"""One async engine per process, and one transaction per use case.

`Database.transaction()` is the only way services touch PostgreSQL. It translates lost or
refused connections into UNAVAILABLE (`DATABASE_UNAVAILABLE`) so clients can retry, and it
never holds a connection longer than the block that asked for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from server.domain.errors import DomainError, Kind, Reason

Connection = AsyncConnection


def sqlalchemy_url(database_url: str) -> str:
    """Accept the usual `postgresql://` URL and select the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    raise ValueError("DATABASE_URL must start with postgresql://")


class Database:
    """The process's connection pool."""

    def __init__(self, database_url: str, *, pool_size: int = 10, max_overflow: int = 10) -> None:
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(database_url),
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=30,  # a burst waits for a connection rather than failing
            pool_recycle=1800,
            connect_args={"connect_timeout": 5, "application_name": "saaslitellm-server"},
        )
        # Same pool; the connection runs each statement in its own implicit transaction.
        self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A connection inside BEGIN ... COMMIT (ROLLBACK on any exception)."""
        async with _translate_errors(), self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def autocommit(self) -> AsyncIterator[Connection]:
        """A connection whose every statement is its own transaction: for use cases that
        need one statement (or several independent ones). It saves the BEGIN and COMMIT
        round trips, which on the hot path cost as much as the statement itself."""
        async with _translate_errors(), self._autocommit_engine.connect() as conn:
            yield conn

    async def ping(self) -> None:
        async with self.autocommit() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()


@contextlib.asynccontextmanager
async def _translate_errors() -> AsyncIterator[None]:
    """Lost or refused connections become UNAVAILABLE (DATABASE_UNAVAILABLE)."""
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError, TimeoutError) as error:
        if isinstance(error, exc.DBAPIError) and not error.connection_invalidated and _is_data_error(error):
            raise
        raise DomainError(
            Kind.UNAVAILABLE, Reason.DATABASE_UNAVAILABLE, "the database is unavailable; retry shortly"
        ) from error
    except exc.TimeoutError as error:  # pool exhausted
        raise DomainError(Kind.UNAVAILABLE, Reason.DATABASE_UNAVAILABLE, "the server is busy; retry shortly") from error


def _is_data_error(error: exc.DBAPIError) -> bool:
    """OperationalError also covers e.g. lock timeouts, which are not outages."""
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None) or ""
    return sqlstate.startswith("55") or sqlstate.startswith("57014")
