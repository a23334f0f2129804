"""Throwaway certificates for local TLS servers, made with the `openssl` command.

`make_pki` writes a CA, a server certificate for localhost and 127.0.0.1 signed by
it, a client certificate signed by it (for mutual TLS), and a second CA that signed
nothing here (a client trusting only that one must refuse the servers). Keys are
EC P-256 in PKCS#8 PEM, which OpenSSL, Python's ssl module and Kafka's PEM key
stores all read. Certificates last a week: long enough for a dev stack, useless
if they leak.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from router.devinfra.process import InfraError

_DAYS = "7"
# The server certificate also serves as a client one (clientAuth): a server's own
# readiness probe presents it where the server asks every client for a certificate.
_SERVER_EXT = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""
_CLIENT_EXT = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""
_PASS_ENV = "DEVINFRA_KEY_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret


@dataclass(frozen=True)
class TlsFiles:
    """What a TLS server needs: its certificate and unencrypted key (PEM), and the CA
    bundle that client certificates must chain to."""

    certfile: Path
    keyfile: Path
    cafile: Path


@dataclass(frozen=True)
class LocalPki:
    ca: Path
    server: TlsFiles
    client_cert: Path
    client_key: Path
    # Set when the client key is encrypted with it.
    client_key_password: str | None
    other_ca: Path


def openssl_executable() -> str:
    path = shutil.which("openssl")
    if path is None:
        raise InfraError("openssl not found on PATH: TLS tests need it (apt-get install -y openssl)")
    return path


def _openssl(*args: str, env: dict[str, str] | None = None) -> None:
    cmd = [openssl_executable(), *args]
    try:
        out = subprocess.run(  # noqa: S603 - argv list built here, no shell
            cmd, capture_output=True, text=True, timeout=60, check=False, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"openssl {args[0]} timed out") from exc
    if out.returncode != 0:
        raise InfraError(f"openssl {' '.join(args[:2])} failed:\n{out.stderr.strip()}")


def _new_key_and_csr(directory: Path, name: str, subject: str) -> tuple[Path, Path]:
    key, csr = directory / f"{name}.key", directory / f"{name}.csr"
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", subject,
    )  # fmt: skip
    return key, csr


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl(
        "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", _DAYS,
        "-subj", f"/CN=leadrouter local {name} {secrets.token_hex(4)}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
    )  # fmt: skip
    return cert, key


def _sign(directory: Path, name: str, subject: str, ca: tuple[Path, Path], ext: str) -> tuple[Path, Path]:
    key, csr = _new_key_and_csr(directory, name, subject)
    extfile = directory / f"{name}.ext"
    extfile.write_text(ext)
    cert = directory / f"{name}.pem"
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-set_serial", str(secrets.randbits(63)), "-days", _DAYS, "-sha256",
        "-extfile", str(extfile), "-out", str(cert),
    )  # fmt: skip
    csr.unlink()
    return cert, key


def make_pki(directory: Path, client_key_password: str | None = None) -> LocalPki:
    """Write the certificates and keys into `directory` (private: keys are in it).

    With `client_key_password` the client key is encrypted with it (PKCS#8, AES-256).
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca = _ca(directory, "ca")
    other_ca, _ = _ca(directory, "other-ca")
    server_cert, server_key = _sign(directory, "server", "/CN=localhost", ca, _SERVER_EXT)
    client_cert, client_key = _sign(directory, "client", "/CN=leadrouter", ca, _CLIENT_EXT)
    if client_key_password is not None:
        encrypted = directory / "client.enc.key"
        # The passphrase goes through the environment, not argv (visible in ps).
        _openssl(
            "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", str(client_key), "-out", str(encrypted),
            "-passout", f"env:{_PASS_ENV}",
            env={**os.environ, _PASS_ENV: client_key_password},
        )  # fmt: skip
        client_key.unlink()
        client_key = encrypted
    return LocalPki(
        ca=ca[0],
        server=TlsFiles(server_cert, server_key, ca[0]),
        client_cert=client_cert,
        client_key=client_key,
        client_key_password=client_key_password,
        other_ca=other_ca,
    )
