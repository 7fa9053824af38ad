"""A throwaway PostgreSQL server and the sample shop's orders, for the tests, the demo and the
JDBC benchmark. Development only: never in the wheel.

    with start_postgres() as server:                 # initdb + pg_ctl in a temp folder
        create_shop_schema(server)
        insert_orders(server, sample_orders(30, now=datetime.now(UTC)))
        print(server.jdbc_url, server.reader)         # jdbc:postgresql://127.0.0.1:PORT/shop

The server runs from PostgreSQL's own binaries (``$GLUE_REPLAY_PG_BIN``, else
``/usr/lib/postgresql/15/bin``, else the newest ``/usr/lib/postgresql/*/bin``), on a free
loopback port, without a Unix socket, with password (SCRAM) authentication, in a temporary
folder that :meth:`PostgresServer.stop` removes. ``initdb`` refuses to run as root: as root the
server runs as the ``postgres`` user (or a ``glue-replay-pg`` system user created for it) via
``runuser``. When ``$GLUE_REPLAY_TEST_PG_DSN`` is set (``postgresql://user:password@host:port/db``,
a user that may create databases) nothing is started: a fresh database is created on that
server instead, and dropped at the end.

SQL is run with ``psql`` over TCP (the password in ``PGPASSWORD``, never on a command line).

For the demo, :func:`start_sample_shop` does all of it and hands back a :class:`SampleShop`
(its ``--jdbc_url``, the reader's environment variables, ``change()`` for a BAU run to find).
"""

from __future__ import annotations

import atexit
import os
import random
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

PG_BIN_ENV = "GLUE_REPLAY_PG_BIN"
PG_DSN_ENV = "GLUE_REPLAY_TEST_PG_DSN"
DEFAULT_PG_BIN = Path("/usr/lib/postgresql/15/bin")
DATABASE = "shop"
ADMIN_USER = "glue_replay_admin"
READER_USER = "glue_replay_reader"
#: The unprivileged OS user a root process runs the server as (created if missing).
SERVER_OS_USERS = ("postgres", "glue-replay-pg")
START_TIMEOUT_SECONDS = 60
#: Throwaway data: durability buys nothing and costs seconds.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
    "shared_buffers": "128MB",
    "TimeZone": "UTC",
}


@dataclass(frozen=True)
class Login:
    """A database user and its password (``repr`` hides the password)."""

    user: str
    password: str = field(repr=False)

    def as_env(self) -> dict[str, str]:
        """The ``GLUE_REPLAY_JDBC_USER`` / ``GLUE_REPLAY_JDBC_PASSWORD`` a local job reads."""
        return {"GLUE_REPLAY_JDBC_USER": self.user, "GLUE_REPLAY_JDBC_PASSWORD": self.password}


class PostgresServer:
    """A PostgreSQL database for tests and demos: its address, an admin and a read-only login.

    Use :func:`start_postgres`; ``stop()`` (or leaving the ``with`` block) stops the server it
    started and deletes its folder, or drops the database it created on a configured server.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        database: str,
        admin: Login,
        reader: Login,
        psql: str,
        on_stop: Callable[[], None],
    ) -> None:
        self.host, self.port, self.database = host, port, database
        self.admin, self.reader = admin, reader
        self._psql, self._on_stop = psql, on_stop
        self._stopped = False

    @property
    def jdbc_url(self) -> str:
        """``jdbc:postgresql://127.0.0.1:PORT/shop``: no credentials, as jobs take it."""
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.database}"

    def run_sql(self, sql: str, *, database: str | None = None, login: Login | None = None) -> str:
        """Run ``sql`` (any number of statements, stopping at the first error); its output."""
        who = login or self.admin
        command = [
            self._psql,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            who.user,
            "-d",
            database or self.database,
        ]
        env = {**os.environ, "PGPASSWORD": who.password, "PGCONNECT_TIMEOUT": "10", "TZ": "UTC"}
        result = subprocess.run(
            command, input=sql, capture_output=True, text=True, env=env, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._on_stop()

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_postgres(folder: Path | None = None) -> PostgresServer:
    """The configured server's fresh database (``$GLUE_REPLAY_TEST_PG_DSN``), else a new server
    in a new folder inside ``folder`` (default: the system's temporary folder; as root, the
    server's user must be able to reach it), with the ``shop`` database and its read-only
    login (:data:`READER_USER`, which may read every table created later)."""
    dsn = os.environ.get(PG_DSN_ENV, "").strip()
    return _configured_server(dsn) if dsn else _temporary_server(folder)


def find_pg_bin() -> Path:
    """The folder of ``initdb``, ``pg_ctl`` and ``psql``."""
    configured = os.environ.get(PG_BIN_ENV)
    candidates = [Path(configured)] if configured else []
    candidates.append(DEFAULT_PG_BIN)
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise RuntimeError(
        "PostgreSQL server binaries not found (initdb, pg_ctl): install postgresql-15 "
        f"(apt-get install -y postgresql-15), set ${PG_BIN_ENV}, or set ${PG_DSN_ENV} to a "
        "running server"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _temporary_server(folder: Path | None) -> PostgresServer:
    bin_dir = find_pg_bin()
    if folder is not None:
        Path(folder).mkdir(parents=True, exist_ok=True)
    # A folder of our own (stop() deletes it), inside ``folder`` if one is given.
    base = Path(tempfile.mkdtemp(prefix="glue-replay-pg-", dir=folder))
    run_as = _server_os_user()
    data = base / "data"
    admin = Login(ADMIN_USER, secrets.token_urlsafe(18))
    reader = Login(READER_USER, secrets.token_urlsafe(18))
    password_file = base / "admin-password"
    password_file.write_text(admin.password + "\n", encoding="utf-8")
    if run_as is not None:
        base.chmod(0o755)  # the server's user must reach its data folder
        shutil.chown(base, user=run_as)
        shutil.chown(password_file, user=run_as)
    password_file.chmod(0o600)
    _as_server_user(
        run_as,
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            ADMIN_USER,
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
    )
    password_file.unlink()
    started = False
    for _attempt in range(3):  # another process may take the probed port first
        port = free_port()
        options = " ".join(f"-c {key}={value}" for key, value in SERVER_SETTINGS.items())
        result = _as_server_user(
            run_as,
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(base / "server.log"),
                "-w",
                "-t",
                str(START_TIMEOUT_SECONDS),
                "-o",
                f"-p {port} {options}",
                "start",
            ],
            check=False,
        )
        if result.returncode == 0:
            started = True
            break
    if not started:
        log_text = (base / "server.log").read_text(errors="replace")[-2000:]
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {result.stderr.strip()}\n{log_text}")

    def stop() -> None:
        _as_server_user(
            run_as, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], False
        )
        shutil.rmtree(base, ignore_errors=True)

    def stop_once() -> None:
        atexit.unregister(stop)
        stop()

    atexit.register(stop)  # a test session or demo that dies leaves no server behind
    server = PostgresServer(
        host="127.0.0.1",
        port=port,
        database=DATABASE,
        admin=admin,
        reader=reader,
        psql=str(bin_dir / "psql"),
        on_stop=stop_once,
    )
    try:
        server.run_sql(
            f"CREATE ROLE {READER_USER} LOGIN PASSWORD '{reader.password}';\n"
            f"CREATE DATABASE {DATABASE};\n",
            database="postgres",
        )
        # The reader may read what the admin creates later, and nothing else.
        server.run_sql(
            f"REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;\n"
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {READER_USER};\n"
        )
    except BaseException:
        server.stop()
        raise
    return server


def _configured_server(dsn: str) -> PostgresServer:
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql") or not parts.username:
        raise RuntimeError(f"${PG_DSN_ENV} must look like postgresql://user:password@host:port/db")
    login = Login(unquote(parts.username), unquote(parts.password or ""))
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    maintenance = parts.path.lstrip("/") or "postgres"
    database = f"glue_replay_{secrets.token_hex(4)}"
    psql = shutil.which("psql") or str(find_pg_bin() / "psql")
    holder: list[PostgresServer] = []

    def drop() -> None:
        holder[0].run_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE);", database=maintenance)

    server = PostgresServer(
        host=host,
        port=port,
        database=database,
        admin=login,
        reader=login,
        psql=psql,
        on_stop=drop,
    )
    holder.append(server)
    server.run_sql(f"CREATE DATABASE {database};", database=maintenance)
    return server


def _server_os_user() -> str | None:
    """The OS user the server runs as: ourselves unless we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in SERVER_OS_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    name = SERVER_OS_USERS[-1]
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    return name


def _as_server_user(
    user: str | None, command: Sequence[str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    full = ["runuser", "-u", user, "--", *command] if user else list(command)
    env = {**os.environ, "TZ": "UTC", "LC_ALL": "C"}
    result = subprocess.run(
        full, capture_output=True, text=True, env=env, check=False, cwd=tempfile.gettempdir()
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{Path(command[0]).name} failed ({result.returncode}): {result.stderr.strip()}"
        )
    return result


# -- the sample shop -------------------------------------------------------------------------

#: The shop's tables, as an application owns them: few constraints (real data is messy, and
#: the pipeline's quarantine rules are what catches bad rows).
SHOP_SCHEMA = """
CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    customer_id text,
    amount      numeric(12, 2),
    currency    text,
    status      text,
    created_at  timestamptz,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX orders_updated_at ON orders (updated_at);
CREATE TABLE order_lines (
    order_id    bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no     int NOT NULL,
    sku         text,
    quantity    int,
    unit_price  numeric(12, 2),
    PRIMARY KEY (order_id, line_no)
);
"""
CURRENCIES = ("EUR", "EUR", "EUR", "GBP", "USD", "CHF", "SEK")
STATUSES = ("pending", "paid", "paid", "shipped", "delivered", "cancelled")
SKUS = tuple(f"SKU-{n:04d}" for n in (12, 17, 23, 31, 42, 58, 64, 77, 81, 95))


@dataclass(frozen=True)
class OrderLine:
    sku: str | None
    quantity: int | None
    unit_price: Decimal | None


@dataclass(frozen=True)
class Order:
    """One row of ``orders`` and its ``order_lines``, as inserted."""

    id: int
    customer_id: str | None
    amount: Decimal | None
    currency: str | None
    status: str | None
    created_at: datetime | None
    updated_at: datetime
    lines: tuple[OrderLine, ...] = ()


def create_shop_schema(server: PostgresServer) -> None:
    """The ``orders`` and ``order_lines`` tables (empty) in the server's database."""
    server.run_sql(SHOP_SCHEMA)


def insert_orders(server: PostgresServer, orders: Iterable[Order]) -> None:
    """Insert (or replace, by id) ``orders`` with their lines, in one transaction."""
    statements = ["BEGIN;"]
    for order in orders:
        statements.append(f"DELETE FROM orders WHERE id = {order.id};")
        statements.append(
            "INSERT INTO orders VALUES ("
            + ", ".join(
                _literal(v)
                for v in (
                    order.id,
                    order.customer_id,
                    order.amount,
                    order.currency,
                    order.status,
                    order.created_at,
                    order.updated_at,
                )
            )
            + ");"
        )
        for number, line in enumerate(order.lines, 1):
            values = (order.id, number, line.sku, line.quantity, line.unit_price)
            statements.append(
                f"INSERT INTO order_lines VALUES ({', '.join(_literal(v) for v in values)});"
            )
    statements.append("COMMIT;")
    server.run_sql("\n".join(statements))


def sample_orders(
    count: int = 30, *, now: datetime, seed: int = 11, first_id: int = 1001
) -> list[Order]:
    """``count`` plausible orders of the sample shop, created over the 90 days before ``now``
    (the last three updated in the last 20 hours, so a first BAU run finds some); every tenth
    one is malformed in a way the orders pipeline quarantines."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    orders = []
    for index in range(count):
        created = now - timedelta(days=rng.uniform(1, 90), seconds=rng.randrange(86_400))
        age = timedelta(hours=rng.uniform(1, 20)) if index >= count - 3 else None
        updated = now - age if age else created + (now - created) * rng.uniform(0.05, 0.9)
        lines = tuple(
            OrderLine(rng.choice(SKUS), rng.randint(1, 4), Decimal(rng.randrange(199, 9999)) / 100)
            for _ in range(rng.randint(1, 3))
        )
        amount = sum(((line.quantity or 0) * (line.unit_price or 0) for line in lines), Decimal(0))
        order = Order(
            id=first_id + index,
            customer_id=str(rng.randint(1, 60)),
            amount=Decimal(amount).quantize(Decimal("0.01")),
            currency=rng.choice(CURRENCIES),
            status=rng.choice(STATUSES),
            created_at=created.replace(microsecond=0),
            updated_at=updated.replace(microsecond=0),
            lines=lines,
        )
        if index % 10 == 9:
            order = _malformed(order, index // 10)
        orders.append(order)
    return orders


def touch_orders(server: PostgresServer, ids: Sequence[int], at: datetime) -> list[int]:
    """The shop changes orders ``ids`` at ``at``: paid -> shipped -> delivered, else paid."""
    server.run_sql(
        "UPDATE orders SET status = CASE status WHEN 'paid' THEN 'shipped' "
        "WHEN 'shipped' THEN 'delivered' ELSE 'paid' END, "
        f"updated_at = {_literal(at)} WHERE id IN ({', '.join(str(int(i)) for i in ids)});"
    )
    return list(ids)


def load_generated_orders(server: PostgresServer, count: int, *, now: datetime) -> None:
    """``count`` orders with two lines each, generated inside the database (a million in well
    under a minute), for benchmarks. Ids 1..count; amounts equal their lines' totals."""
    quantity = "(1 + (n + {line}) % 3)"
    price = "(((n * 7 + {line} * 13) % 9000 + 100) / 100.0)::numeric(12, 2)"
    total = " + ".join(f"{quantity.format(line=n)} * {price.format(line=n)}" for n in (1, 2))
    server.run_sql(
        f"""
        INSERT INTO orders
        SELECT n, (n % 5000)::text, {total}, (ARRAY['EUR','GBP','USD'])[1 + n % 3],
               (ARRAY['pending','paid','shipped','delivered'])[1 + n % 4],
               {_literal(now)}::timestamptz - make_interval(mins => n % 100000 + 60),
               {_literal(now)}::timestamptz - make_interval(mins => n % 50000)
        FROM generate_series(1, {int(count)}) AS n;
        INSERT INTO order_lines
        SELECT n, l, 'SKU-' || lpad(((n * l) % 9000 + 1000)::text, 4, '0'),
               {quantity.format(line="l")}, {price.format(line="l")}
        FROM generate_series(1, {int(count)}) AS n, generate_series(1, 2) AS l;
        ANALYZE orders; ANALYZE order_lines;
        """
    )


class SampleShop:
    """A running PostgreSQL holding the sample shop's orders: for ``make demo``.

    shop = start_sample_shop(records=30)
    os.environ.update(shop.reader_env)            # the credentials a local job reads
    run_ingest_job([..., *shop.job_args], PIPELINE)  # --jdbc_url jdbc:postgresql://...
    changed = shop.change(count=3)                # ids of orders changed "now"
    shop.stop()
    """

    def __init__(self, server: PostgresServer, orders: list[Order]) -> None:
        self.server = server
        self.orders = orders

    @property
    def job_args(self) -> list[str]:
        """What the orders jobs need besides the replay arguments: ``--jdbc_url ...``."""
        return ["--jdbc_url", self.server.jdbc_url]

    @property
    def reader_env(self) -> dict[str, str]:
        """``GLUE_REPLAY_JDBC_USER`` / ``GLUE_REPLAY_JDBC_PASSWORD`` of the read-only login."""
        return self.server.reader.as_env()

    @property
    def good_ids(self) -> list[str]:
        """Ids of the orders the pipeline normalizes (the others are malformed on purpose)."""
        return [str(o.id) for i, o in enumerate(self.orders) if i % 10 != 9]

    def change(self, count: int = 3, at: datetime | None = None) -> list[str]:
        """The shop changes ``count`` well-formed orders at ``at`` (default now); their ids."""
        ids = self.good_ids[:count]
        touch_orders(self.server, [int(i) for i in ids], at or datetime.now(UTC))
        return ids

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> SampleShop:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_sample_shop(
    records: int = 30, *, now: datetime | None = None, folder: Path | None = None
) -> SampleShop:
    """A new PostgreSQL (see :func:`start_postgres`) with the shop's tables and ``records``
    sample orders (ids from 1001, updated over the 90 days before ``now``, the last three in
    the last 20 hours; every tenth one malformed)."""
    server = start_postgres(folder)
    try:
        create_shop_schema(server)
        orders = sample_orders(records, now=now or datetime.now(UTC))
        insert_orders(server, orders)
    except BaseException:
        server.stop()
        raise
    return SampleShop(server, orders)


def _malformed(order: Order, which: int) -> Order:
    """One of the sample shop's kinds of bad data, by turns."""
    from dataclasses import replace

    kinds: list[Callable[[Order], Order]] = [
        lambda o: replace(o, currency="XYZ"),
        lambda o: replace(o, amount=(o.amount or Decimal(0)) + Decimal("1.00")),
        lambda o: replace(o, status="lost"),
    ]
    return kinds[which % len(kinds)](order)


def _literal(value: object) -> str:
    """A SQL literal for the sample data (our own values; quotes doubled all the same)."""
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return f"'{moment.isoformat()}'"
    if isinstance(value, int | Decimal):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"
