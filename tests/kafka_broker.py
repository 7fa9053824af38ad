"""A real Apache Kafka broker on loopback, in KRaft combined mode, from the jars that
``scripts/fetch_kafka.py`` put in ``.cache/kafka`` (or ``$GLUE_REPLAY_KAFKA_DIR``).

One JVM is both the controller and the broker (``process.roles=broker,controller``, node 1, a
quorum of itself), on two free loopback ports, its log folder under the test's tmp folder. The
storage is formatted once with a random cluster id (``kafka.tools.StorageTool format``, what
``kafka-storage.sh format`` runs); :meth:`KafkaBroker.start` then runs ``kafka.Kafka`` and waits
until the broker answers a metadata request naming itself. :meth:`KafkaBroker.stop` and a later
:meth:`KafkaBroker.start` restart it on the same ports and data.

    with KafkaBroker(tmp_path, jars) as broker:
        broker.create_topic("orders", partitions=3)
        ... broker.bootstrap ...   # "127.0.0.1:<port>"
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
KAFKA_DIR = Path(os.environ.get("GLUE_REPLAY_KAFKA_DIR", str(REPO / ".cache" / "kafka")))
CLASSPATH_FILE = "classpath.txt"
#: A small heap: the tests send a few MB in all.
JVM_OPTIONS = ["-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-Djava.awt.headless=true"]


def kafka_jars(folder: Path = KAFKA_DIR) -> list[Path] | None:
    """The broker's classpath, or ``None`` when ``scripts/fetch_kafka.py`` has not run (or not
    to the end: it writes ``classpath.txt`` last)."""
    listing = folder / CLASSPATH_FILE
    if not listing.exists():
        return None
    jars = [folder / name for name in listing.read_text().split()]
    return jars if all(jar.exists() for jar in jars) else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class KafkaBroker:
    """One KRaft node (controller and broker) on ``127.0.0.1``; its files under ``home``."""

    def __init__(self, home: Path, jars: list[Path], *, java: str = "java") -> None:
        self.home = home
        self.classpath = os.pathsep.join(str(jar) for jar in jars)
        self.java = java
        self.port = free_port()
        self.controller_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.properties = home / "server.properties"
        self.log_file = home / "broker.log"
        self.process: subprocess.Popen[bytes] | None = None
        home.mkdir(parents=True, exist_ok=True)
        self.properties.write_text(
            "".join(f"{key}={value}\n" for key, value in self.settings().items())
        )

    def settings(self) -> dict[str, str]:
        """``server.properties``: one node, PLAINTEXT on loopback, single-replica internal topics,
        no topic made by a producer naming it (as a production cluster is set up)."""
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.home / "data"),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }

    def _java(self, main: str, *args: str) -> list[str]:
        return [self.java, *JVM_OPTIONS, "-cp", self.classpath, main, *args]

    def format(self) -> None:
        """Format the log folder with a random cluster id, once."""
        if (self.home / "data" / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        done = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.properties),
            ),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kafka-storage format failed: {done.stdout}{done.stderr}")

    def start(self, timeout: float = 90.0) -> None:
        """Format if needed, start the JVM and wait until the broker answers metadata."""
        self.format()
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                self._java("kafka.Kafka", str(self.properties)),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the Kafka broker exited with {self.process.returncode}; see {self.log_file}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Kafka broker did not start in {timeout} s; see log")
            time.sleep(0.2)

    def _answers(self) -> bool:
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                return False
        try:
            metadata = self.admin().list_topics(timeout=2)
        except Exception:
            return False
        return 1 in metadata.brokers

    def admin(self) -> Any:
        from confluent_kafka.admin import AdminClient

        return AdminClient({"bootstrap.servers": self.bootstrap, "logger": _quiet})

    def create_topic(
        self, name: str, partitions: int = 3, config: dict[str, str] | None = None
    ) -> str:
        from confluent_kafka.admin import NewTopic

        admin = self.admin()  # kept referenced: a collected client cancels its requests
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
            operation_timeout=30,
        )
        futures[name].result(timeout=60)
        # Created is not yet led: wait until every partition has its leader in the metadata,
        # so the first request to any of them is not answered NOT_LEADER_FOR_PARTITION.
        deadline = time.monotonic() + 30
        while True:
            described = admin.list_topics(name, timeout=10).topics[name]
            led = [p for p in described.partitions.values() if p.leader == 1 and p.error is None]
            if described.error is None and len(led) == partitions:
                return name
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {name} has no leader for every partition: {described}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the JVM (SIGTERM: a controlled shutdown; SIGKILL after 30 s)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the broker's process, before Java starts: SIGTERM it when the test process dies, so a
    killed test run leaves no broker behind (Linux's PR_SET_PDEATHSIG; elsewhere, nothing)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Quiet:
    """A logger for the admin clients of the fixture: librdkafka's 'connection refused' lines
    while the broker starts are expected, not worth a line each."""

    def log(self, *args: Any, **kwargs: Any) -> None:
        pass


_quiet = _Quiet()
