"""What `modelstream kafka start --secure` needs: a self-signed CA, a broker certificate for 127.0.0.1 and
localhost signed by it, SCRAM-SHA-512 users (the broker's own and an application user), and a client
properties file for that user. Generated once per broker data directory, in its ``security`` folder,
readable by its owner only (cryptography, pinned)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MECHANISM = "SCRAM-SHA-512"
BROKER_USER = "broker"
CLIENT_USER = "modelstream"
_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"


@dataclass(frozen=True)
class LocalSecurity:
    """The files of a secured local broker."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def broker_pem(self) -> Path:
        """The broker's private key and certificate chain (Kafka's PEM keystore)."""
        return self.directory / "broker.pem"

    @property
    def client_properties(self) -> Path:
        return self.directory / "client.properties"

    def password(self, user: str) -> str:
        return (self.directory / f"{user}.password").read_text().strip()

    @property
    def exists(self) -> bool:
        return self.client_properties.is_file() and self.broker_pem.is_file()

    def scram_arguments(self) -> list[str]:
        """StorageTool's --add-scram arguments: the users exist from the broker's first start."""
        return [
            arg
            for user in (BROKER_USER, CLIENT_USER)
            for arg in ("--add-scram", f"{MECHANISM}=[name={user},password={self.password(user)}]")
        ]

    def server_properties(self) -> list[str]:
        """The broker's settings for a SASL_SSL listener (the listener itself is the caller's)."""
        login = f'{_LOGIN_MODULE} required username="{BROKER_USER}" password="{self.password(BROKER_USER)}";'
        return [
            f"sasl.enabled.mechanisms={MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config={login}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.broker_pem}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.ca}",
        ]


def _private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_bytes(data)


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    signer: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
    )
    if issuer is None:  # the CA
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    return builder.sign(signer, hashes.SHA256())


def generate(directory: Path, bootstrap: str) -> LocalSecurity:
    """The CA, the broker's key and certificate, the users' passwords and the client properties file in
    ``directory`` (created, owner-only), unless they are there already."""
    security = LocalSecurity(directory)
    if security.exists:
        return security
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("modelstream local CA", ca_key, None, ca_key)
    broker_key = ec.generate_private_key(ec.SECP256R1())
    broker = _certificate("127.0.0.1", broker_key, ca.subject, ca_key)
    pem = serialization.Encoding.PEM
    security.ca.write_bytes(ca.public_bytes(pem))
    key = broker_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _private(security.broker_pem, key + broker.public_bytes(pem) + ca.public_bytes(pem))
    for user in (BROKER_USER, CLIENT_USER):
        _private(directory / f"{user}.password", secrets.token_urlsafe(24).encode())
    login = f'{_LOGIN_MODULE} required username="{CLIENT_USER}" password="{security.password(CLIENT_USER)}";'
    properties = [
        f"# {CLIENT_USER} on the local broker at {bootstrap} (`modelstream kafka start --secure`)",
        "security.protocol=SASL_SSL",
        f"sasl.mechanism={MECHANISM}",
        f"sasl.jaas.config={login}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={security.ca}",
        "",
    ]
    _private(security.client_properties, "\n".join(properties).encode())
    return security
