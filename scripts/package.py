"""`make package`: build what Terraform uploads, into dist/.

- dist/glue_replay-<version>-py3-none-any.whl  the library and the bundled pipelines
  (glue_replay, glue_replay_examples), for the Glue jobs' --additional-python-modules (Spark,
  Delta and awsglue come from Glue itself; setup.py leaves the sample API, glue_replay_devtools,
  out)
- dist/glue_replay_lambda.zip                  the package for the replay Lambda: glue_replay
  only (its runtime provides boto3; nothing in glue_replay.trigger imports Spark, and the
  pipelines' id rules come from its environment, not from their code)

The zip is reproducible (sorted entries, fixed timestamps), so an unchanged package keeps its
hash and Terraform does not re-upload it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def build_wheel(dist: Path = DIST) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(dist),
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    (wheel,) = dist.glob("glue_replay-*.whl")
    return wheel


def build_lambda_zip(dist: Path = DIST) -> Path:
    target = dist / "glue_replay_lambda.zip"
    package = ROOT / "lib" / "glue_replay"
    files = sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(str(path.relative_to(package.parent)), FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return target


def main() -> int:
    shutil.rmtree(DIST, ignore_errors=True)
    DIST.mkdir()
    for artifact in (build_wheel(), build_lambda_zip()):
        digest = hashlib.sha256(artifact.read_bytes()).hexdigest()[:16]
        size = artifact.stat().st_size
        print(f"package: {artifact.relative_to(ROOT)}  {size:>8} bytes  sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
