"""``moto_server`` in a process of its own on a free loopback port: the real boto3 HTTP path.

A plain module the tests import (``from moto_process import running_moto_server``). Its own
process, because readers that hold the GIL (delta-rs) or that run in Spark's Python workers
cannot reach a server thread inside the pytest process.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REGION = "eu-west-1"
ACCOUNT = "123456789012"
#: What every client of the fake endpoint needs (never real credentials).
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_moto_server(log_folder: Path) -> Iterator[str]:
    """Start ``moto_server``, wait until it answers, yield its endpoint URL, stop it."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with (log_folder / "moto_server.log").open("w") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"moto_server did not start (see {log.name})") from None
                    time.sleep(0.1)
            yield endpoint
        finally:
            server.terminate()
            server.wait(timeout=10)
