"""A SASL_SSL listener for the local broker: SCRAM-SHA-512 users, TLS with a certificate made here.

For trying a secured setup and for the tests that prove every client passes the security settings
through (``docs/kafka-security.md``). The certificate is self-signed, made with the JDK's
``keytool`` for ``127.0.0.1`` (so hostname verification holds), and its PEM is what clients trust
(``kafka_ssl_ca_location``). The user is created when the broker's storage is formatted.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream_app.errors import BrokerError

MECHANISM = "SCRAM-SHA-512"
LISTENER = "SASL_SSL"


@dataclass(frozen=True)
class SecureListener:
    """One listener on ``port`` with one user; TLS material kept in ``directory``."""

    port: int
    directory: Path
    username: str = "stream-app"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)
    _store_password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)

    @property
    def keystore(self) -> Path:
        return self.directory / "broker.p12"

    @property
    def ca_pem(self) -> Path:
        """The certificate clients trust."""
        return self.directory / "broker-ca.pem"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def make_certificate(self, java: Path) -> None:
        """A key pair for 127.0.0.1 in a PKCS12 keystore, and its certificate as PEM (once)."""
        if self.keystore.exists() and self.ca_pem.exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        keytool = str(java.resolve().parent / "keytool")
        common = ["-keystore", str(self.keystore), "-storetype", "PKCS12"]
        common += ["-storepass", self._store_password, "-alias", "broker"]
        key = ["-keyalg", "RSA", "-keysize", "2048", "-validity", "30"]
        subject = ["-dname", "CN=127.0.0.1", "-ext", "SAN=ip:127.0.0.1"]
        _run([keytool, "-genkeypair", *common, *key, *subject])
        _run([keytool, "-exportcert", *common, "-rfc", "-file", str(self.ca_pem)])

    def server_properties(self) -> str:
        """Lines added to the broker's ``server.properties``."""
        jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return (
            f"sasl.enabled.mechanisms={MECHANISM}\n"
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}\n"
            f"ssl.keystore.location={self.keystore}\n"
            f"ssl.keystore.password={self._store_password}\n"
            "ssl.keystore.type=PKCS12\n"
        )

    def format_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments that create the user."""
        return ["--add-scram", f"{MECHANISM}=[name={self.username},password={self.password}]"]

    def client_settings(self, **overrides: Any) -> dict[str, Any]:
        """Settings fields for a client of this listener (``overrides`` e.g. a wrong password)."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "kafka_security_protocol": LISTENER,
            "kafka_sasl_mechanism": MECHANISM,
            "kafka_sasl_username": self.username,
            "kafka_sasl_password": self.password,
            "kafka_ssl_ca_location": self.ca_pem,
            **overrides,
        }


def _run(command: list[str]) -> None:
    result = subprocess.run(  # noqa: S603  # a fixed argv
        command, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise BrokerError(f"{Path(command[0]).name} failed: {result.stdout}{result.stderr}")
