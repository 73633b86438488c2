"""An OpenBao dev server that also listens with TLS, on a certificate the test chose."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from vault_async.devstack._binaries import find_bao
from vault_async.devstack._processes import ServerProcess, free_port, free_port_pair

__all__ = ["TlsOpenBao", "openbao_with_certificate"]


@dataclass(frozen=True)
class TlsOpenBao:
    """Where it listens with TLS (https://127.0.0.1:port) and its root token."""

    addr: str
    root_token: str


@contextlib.contextmanager
def openbao_with_certificate(workdir: Path, cert_pem: str, key_pem: str) -> Iterator[TlsOpenBao]:
    """`bao server -dev` plus a TLS listener serving ``cert_pem``; stopped by PID on exit."""
    cert, key = workdir / "server.pem", workdir / "server-key.pem"
    cert.write_text(cert_pem)
    key.write_text(key_pem)
    key.chmod(0o600)
    tls_port, dev_port = free_port(), free_port_pair()
    config = workdir / "listener.hcl"
    config.write_text(
        f'listener "tcp" {{\n  address = "127.0.0.1:{tls_port}"\n'
        f'  cluster_address = "127.0.0.1:{free_port()}"\n'
        f'  tls_cert_file = "{cert}"\n  tls_key_file = "{key}"\n}}\n'
    )
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    token = secrets.token_hex(20)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env |= {"HOME": str(home), "BAO_DEV_ROOT_TOKEN_ID": token}
    argv = [
        str(find_bao()), "server", "-dev", "-dev-no-store-token",
        f"-dev-listen-address=127.0.0.1:{dev_port}", f"-config={config}", "-log-level=warn",
    ]
    process = ServerProcess("bao", argv, workdir / "openbao.log", env=env, redact=(token,))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{dev_port}", timeout=2.0) as http:

            def ready() -> bool:
                try:
                    return http.get("/v1/sys/health").status_code == 200
                except httpx.TransportError:
                    return False

            process.wait_until(ready, timeout=30, step="start OpenBao with a TLS listener")
        yield TlsOpenBao(addr=f"https://127.0.0.1:{tls_port}", root_token=token)
    finally:
        process.stop()
