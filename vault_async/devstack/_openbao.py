"""A throw-away OpenBao dev server on 127.0.0.1 with a random root token."""

from __future__ import annotations

import secrets
import ssl
from pathlib import Path
from typing import Any

import httpx

from ._environ import child_environ
from ._errors import DevStackError
from ._private import make_private_dir, read_text_nofollow, write_private_file
from ._processes import ServerProcess


class OpenBaoServer:
    """`bao server -dev` in memory; HOME points into the work dir so no token file leaks out.

    `workdir` must be private to this user (0700): the log holds the root token and the unseal
    key, which `bao server -dev` prints at start-up.
    """

    def __init__(
        self, binary: Path, workdir: Path, port: int, *, tls: bool = False, audit: bool = False
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.tls = tls
        self.addr = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        self.tls_dir = workdir / "bao-tls"
        self.ca_cert = self.tls_dir / "vault-ca.pem" if tls else None
        # A raw file audit log records every token and secret Vault hands out: tests use it to
        # prove none of them leaks. OpenBao only accepts audit devices from its config file.
        self.audit_log = workdir / "audit.log" if audit else None
        self.root_token = secrets.token_hex(20)
        self.log_path = workdir / "openbao.log"
        self.process: ServerProcess | None = None
        self._http: httpx.Client | None = None

    def spawn(self) -> None:
        """Start the process (from the thread that will outlive it: it dies with that thread)."""
        home = self.workdir / "bao-home"
        make_private_dir(home)
        env = child_environ(home)
        env["BAO_DEV_ROOT_TOKEN_ID"] = self.root_token  # passed by env, not argv (ps shows argv)
        argv = [
            str(self.binary), "server", "-dev", "-dev-no-store-token",
            f"-dev-listen-address=127.0.0.1:{self.port}", "-log-level=warn",
        ]
        if self.audit_log is not None:
            config = self.workdir / "bao-audit.hcl"
            write_private_file(
                config,
                'audit "file" "raw" {\n  options {\n'
                f'    file_path = "{self.audit_log}"\n    log_raw = "true"\n'
                '    mode = "0600"\n  }\n}\n',
            )
            argv.append(f"-config={config}")
        if self.tls:
            make_private_dir(self.tls_dir)
            argv += ["-dev-tls", f"-dev-tls-cert-dir={self.tls_dir}"]
        self.process = ServerProcess(
            "bao", argv, self.log_path, env=env, redact=(self.root_token, "Unseal Key:")
        )

    def _client(self) -> httpx.Client | None:
        """The configuration client, once the CA file (in TLS mode) exists."""
        if self._http is None:
            if self.ca_cert is not None and not self.ca_cert.exists():
                return None
            self._http = httpx.Client(
                base_url=self.addr, headers={"X-Vault-Token": self.root_token}, timeout=10.0,
                verify=ssl.create_default_context(cafile=self.ca_cert) if self.ca_cert else True,
            )
        return self._http

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the spawned server answers its health check."""
        assert self.process is not None
        self.process.wait_until(self._healthy, timeout=timeout, step="start OpenBao")

    def _healthy(self) -> bool:
        http = self._client()
        if http is None:
            return False
        try:
            return http.get("/v1/sys/health").status_code == 200
        except httpx.TransportError:
            return False

    def call(
        self, method: str, path: str, step: str, body: Any = None, *, namespace: str | None = None
    ) -> dict[str, Any]:
        """A root-token API call (in ``namespace`` if given); a failure names the step and
        Vault's errors."""
        http = self._client()
        assert http is not None
        assert self.process is not None
        headers = {"X-Vault-Namespace": namespace} if namespace else None
        try:
            response = http.request(method, f"/v1/{path}", json=body, headers=headers)
        except httpx.TransportError as exc:
            raise DevStackError(step, f"{method} /v1/{path}: {exc}", self.process.tail()) from exc
        if response.status_code >= 400:
            try:
                errors = response.json().get("errors", [])
            except ValueError:
                errors = [response.text[:200]]
            where = f" in namespace {namespace}" if namespace else ""
            raise DevStackError(
                step, f"{method} /v1/{path}{where} -> {response.status_code}: {errors}",
                self.process.tail(),
            )
        if response.status_code == 204 or not response.content:
            return {}
        data: dict[str, Any] = response.json()
        return data

    def unseal_key(self) -> str:
        """The dev server's single unseal key, as it printed it at start-up."""
        for line in read_text_nofollow(self.log_path).splitlines():
            if line.startswith("Unseal Key:"):
                return line.partition(":")[2].strip()
        raise DevStackError("read the unseal key", "OpenBao printed no 'Unseal Key:' line", "")

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self.process is not None:
            self.process.stop()
