"""``moto_server`` in a process of its own on a free loopback port: the real boto3 HTTP path.

A plain module the tests import (``from moto_process import running_moto_server``). Its own
process, because readers that hold the GIL (delta-rs) or that run in Spark's Python workers
cannot reach a server thread inside the pytest process.

:func:`running_moto_server` speaks plain HTTP; :func:`running_tls_moto_server` speaks HTTPS with a
certificate made for the run (``127.0.0.1``), for what must not be tested over plain HTTP: the
deployed buckets refuse it (``DenyInsecureTransport``), as they should. Its clients trust that
certificate alone: boto3 and the AWS CLI by ``AWS_CA_BUNDLE``, a JVM by a PKCS12 trust store,
Terraform's provider by ``insecure`` (Go reads no CA bundle from the environment per client).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
    """Start ``moto_server`` (plain HTTP), wait until it answers, yield its endpoint, stop it."""
    with _moto_server(log_folder, tls=None) as endpoint:
        yield endpoint


@dataclass(frozen=True)
class TlsEndpoint:
    """A ``moto_server`` speaking HTTPS, and what a client needs to trust it."""

    url: str
    #: The server's self-signed certificate (PEM): ``AWS_CA_BUNDLE`` for boto3 and the AWS CLI.
    ca_bundle: Path
    #: The same certificate in a PKCS12 trust store, for a JVM (S3A): ``javax.net.ssl.trustStore``.
    truststore: Path
    truststore_password: str = "glue-replay-tests"  # a throwaway trust store's

    def java_options(self) -> str:
        """JVM flags that make the certificate the JVM's only trusted one."""
        return (
            f"-Djavax.net.ssl.trustStore={self.truststore} "
            "-Djavax.net.ssl.trustStoreType=PKCS12 "
            f"-Djavax.net.ssl.trustStorePassword={self.truststore_password}"
        )


@contextmanager
def running_tls_moto_server(folder: Path) -> Iterator[TlsEndpoint]:
    """Start ``moto_server`` over HTTPS with a certificate made for it; yield how to reach it."""
    certificate, key = _self_signed_certificate(folder)
    truststore = folder / "moto-truststore.p12"
    keytool = shutil.which("keytool") or str(Path(_java_home()) / "bin" / "keytool")
    subprocess.run(
        [keytool, "-importcert", "-noprompt", "-alias", "moto", "-file", str(certificate),
         "-keystore", str(truststore), "-storetype", "PKCS12",
         "-storepass", TlsEndpoint.truststore_password],
        check=True,
        capture_output=True,
    )  # fmt: skip
    with _moto_server(folder, tls=(certificate, key)) as url:
        yield TlsEndpoint(url, certificate, truststore)


def _java_home() -> str:
    home = os.environ.get("JAVA_HOME")
    if home:
        return home
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("no keytool: neither JAVA_HOME nor java on the PATH")
    return str(Path(java).resolve().parents[1])


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A key and a one-day certificate for ``127.0.0.1`` and ``localhost``, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "moto_server on loopback")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        # A leaf, not a CA: rustls (delta-rs) refuses a CA certificate as a server's own
        # ("CaUsedAsEndEntity"); OpenSSL (boto3) and the JVM trust either.
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_file, key_file = folder / "moto-cert.pem", folder / "moto-key.pem"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificate_file, key_file


#: Starts tried before giving up: a free port probed here may be taken by another process (the
#: other pytest-xdist worker's servers and Spark jobs bind ports too) before moto_server binds it.
START_ATTEMPTS = 3


@contextmanager
def _moto_server(log_folder: Path, tls: tuple[Path, Path] | None) -> Iterator[str]:
    launcher = Path(__file__).with_name("moto_launcher.py")  # moto_server, with a moto bug fixed
    context = None if tls is None else ssl.create_default_context(cafile=str(tls[0]))
    with (log_folder / "moto_server.log").open("w") as log:
        for attempt in range(1, START_ATTEMPTS + 1):
            port = free_port()
            command = [sys.executable, str(launcher), "-H", "127.0.0.1", "-p", str(port)]
            if tls is not None:
                command += ["--ssl-cert", str(tls[0]), "--ssl-key", str(tls[1])]
            endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
            server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            answered = False
            try:
                answered = _answers(endpoint, server, context)
            finally:
                if not answered:
                    server.terminate()
                    server.wait(timeout=10)
            if answered:
                break
            if attempt == START_ATTEMPTS:
                raise RuntimeError(f"moto_server did not start (see {log.name})")
        try:
            yield endpoint
        finally:
            server.terminate()
            server.wait(timeout=10)


def _answers(
    endpoint: str, server: subprocess.Popen[bytes], context: ssl.SSLContext | None
) -> bool:
    """Whether ``server`` answers at ``endpoint`` within 30 s: ``False`` once it has exited (its
    port was taken) or the time is up."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1, context=context):
                return server.poll() is None  # unless ours had exited: another server answered
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.1)
