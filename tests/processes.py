"""Helpers for tests that run a job script in a process of its own."""

from __future__ import annotations

import os
from pathlib import Path


def without_java() -> dict[str, str]:
    """This process's environment with no way to start a JVM: a job that started Spark fails
    (exit 1) instead of answering, so an answer proves it came before any JVM."""
    env = dict(os.environ, JAVA_HOME="/nonexistent-java-home")
    env["PATH"] = os.pathsep.join(
        folder
        for folder in env.get("PATH", "").split(os.pathsep)
        if not (Path(folder) / "java").exists()
    )
    return env
