"""A real PostgreSQL for the JDBC tests: one server per test session, started by the suite.

Test modules that need it declare ``pytest_plugins = ["postgres_fixture"]`` and take the
``postgres`` fixture (the server, with the sample shop's empty ``orders`` and ``order_lines``
tables) and ``jdbc_login`` (the read-only login, exported as ``$GLUE_REPLAY_JDBC_USER`` and
``$GLUE_REPLAY_JDBC_PASSWORD`` for the test, as a local job reads them).

The server is started by :func:`glue_replay_devtools.postgres.start_postgres` in a temporary
folder on a free loopback port (as an unprivileged user when the suite runs as root), or is
``$GLUE_REPLAY_TEST_PG_DSN``'s when that is set; it is stopped and its folder removed at the
end of the session. Under pytest-xdist each worker has a server (or a database) of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from checkout_lock import checkout_lock
from glue_replay_devtools.postgres import Login, PostgresServer, create_shop_schema, start_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    # One worker starts its server at a time: as root, a start creates the server's OS user when
    # there is none (useradd), and two workers creating it at once would fail one of them.
    with checkout_lock("postgres-start"):
        server = start_postgres()
    with server:
        create_shop_schema(server)
        yield server


@pytest.fixture
def shop(postgres: PostgresServer) -> PostgresServer:
    """The server with the shop's tables emptied: each test inserts the orders it knows."""
    postgres.run_sql("TRUNCATE order_lines, orders;")
    return postgres


@pytest.fixture
def jdbc_login(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Login:
    for name, value in postgres.reader.as_env().items():
        monkeypatch.setenv(name, value)
    return postgres.reader
