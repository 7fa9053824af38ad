"""A real Spark standalone cluster on loopback: a master and two workers, separate processes.

Started from the pyspark install's own ``spark-class``. The workers run with a clean
environment (only what a JVM needs) in their own working directories, so a job that relied on
executors sharing the driver's memory, files, working directory or environment variables would
fail on it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).resolve().parent


@dataclass(frozen=True)
class Cluster:
    master_url: str
    worker_dirs: tuple[Path, ...]
    logs: Path

    def driver_settings(self) -> dict[str, str]:
        """Session settings for a driver of this cluster: one core and little memory each."""
        return {
            "spark.master": self.master_url,
            "spark.cores.max": "2",
            "spark.executor.cores": "1",
            "spark.executor.memory": "768m",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.databricks.delta.snapshotPartitions": "1",
            "spark.ui.enabled": "false",
        }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _clean_env(home: Path) -> dict[str, str]:
    java = shutil.which("java")
    path = os.pathsep.join(
        dict.fromkeys(p for p in (str(Path(java).parent) if java else "", "/usr/bin", "/bin") if p)
    )
    env = {"PATH": path, "HOME": str(home), "SPARK_HOME": str(SPARK_HOME), "TZ": "UTC"}
    if "JAVA_HOME" in os.environ:
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    env["SPARK_LOG_DIR"] = str(home / "logs")
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return env


@contextmanager
def standalone_cluster(root: Path, workers: int = 2) -> Iterator[Cluster]:
    """Start a master and ``workers`` workers under ``root``; stop them all on exit."""
    root.mkdir(parents=True, exist_ok=True)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    port, ui_port = free_port(), free_port()
    master_url = f"spark://127.0.0.1:{port}"
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        master_home = root / "master"
        master_home.mkdir(exist_ok=True)
        processes.append(
            subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                 "--port", str(port), "--webui-port", str(ui_port)],
                cwd=master_home, env=_clean_env(master_home),
                stdout=(logs / "master.log").open("wb"), stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        _wait_for_port(port, processes[0], logs / "master.log")
        dirs = []
        for number in range(1, workers + 1):
            home = root / f"worker-{number}"
            (home / "work").mkdir(parents=True, exist_ok=True)
            dirs.append(home)
            processes.append(
                subprocess.Popen(
                    [spark_class, "org.apache.spark.deploy.worker.Worker", master_url,
                     "--host", "127.0.0.1", "--cores", "1", "--memory", "1g",
                     "--webui-port", str(free_port()), "--work-dir", str(home / "work")],
                    cwd=home, env=_clean_env(home),
                    stdout=(logs / f"worker-{number}.log").open("wb"), stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        _wait_for_workers(ui_port, workers, logs)
        yield Cluster(master_url, tuple(dirs), logs)
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Spark master exited: {log.read_text()[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise RuntimeError(f"the Spark master did not listen on {port}")


def _wait_for_workers(ui_port: int, count: int, logs: Path) -> None:
    """Until the master's status page lists ``count`` ALIVE workers."""
    deadline = time.monotonic() + 90
    alive = 0
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as page:
                import json

                status = json.loads(page.read())
            alive = sum(1 for w in status.get("workers", []) if w.get("state") == "ALIVE")
            if alive >= count:
                return
        except OSError:
            pass
        time.sleep(0.5)
    tails = {p.name: p.read_text()[-1500:] for p in logs.glob("*.log")}
    raise RuntimeError(f"{alive} of {count} Spark workers registered: {tails}")
