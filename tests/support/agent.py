"""OpenBao Agent for tests: its config, the process (stopped by PID), atomic file writes."""

from __future__ import annotations

import os
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path
from types import TracebackType

from tests.support.processes import stop_process
from vault_async import _creds_file
from vault_async.devstack._binaries import find_bao

__all__ = ["AgentProcess", "agent_policy", "replace_file", "wait_for_file"]

JSON_TEMPLATE = _creds_file.JSON_TEMPLATE.replace("database/creds/app", "{path}")
"""The documented template, with ``{path}`` (``<mount>/creds/<role>``) to fill with replace."""


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` the way Agent does: a new file renamed over the old one."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(temporary, path)


def wait_for_file(path: Path, timeout: float) -> str:
    """The file's text once it exists and is not empty; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        if text.strip():
            return text
        time.sleep(0.05)
    raise TimeoutError(f"{path} not written within {timeout} s")


def agent_policy(mount: str, role: str) -> str:
    """What an Agent rendering ``<mount>/creds/<role>`` needs.

    Agent renews a lease with its id in the body (``sys/leases/renew``), not in the URL,
    so the path cannot name the role: ``allowed_parameters`` limits the ids instead.
    """
    creds = f"{mount}/creds/{role}"
    return textwrap.dedent(
        f"""
        path "{creds}" {{ capabilities = ["read"] }}
        path "sys/leases/renew" {{
          capabilities = ["update"]
          allowed_parameters = {{ "lease_id" = ["{creds}/*"], "increment" = [] }}
        }}
        path "auth/token/lookup-self" {{ capabilities = ["read"] }}
        path "auth/token/renew-self" {{ capabilities = ["update"] }}
        """
    )


class AgentProcess:
    """``bao agent``: AppRole auto-auth, a file sink, one template; stopped by PID."""

    def __init__(
        self,
        workdir: Path,
        *,
        vault_addr: str,
        role_id: str,
        secret_id: str,
        secret_path: str,
    ) -> None:
        self.workdir = workdir
        self.sink = workdir / "token"
        self.creds = workdir / "db.json"
        self.log = workdir / "agent.log"
        (workdir / "role_id").write_text(role_id)
        secret_file = workdir / "secret_id"
        secret_file.write_text(secret_id)
        secret_file.chmod(0o600)
        template = JSON_TEMPLATE.replace("{path}", secret_path)
        self.config = workdir / "agent.hcl"
        self.config.write_text(
            textwrap.dedent(
                f"""
                vault {{ address = "{vault_addr}" }}
                auto_auth {{
                  method "approle" {{
                    config = {{
                      role_id_file_path = "{workdir / "role_id"}"
                      secret_id_file_path = "{secret_file}"
                      remove_secret_id_file_after_reading = false
                    }}
                  }}
                  sink "file" {{ config = {{ path = "{self.sink}" }} }}
                }}
                template {{
                  destination = "{self.creds}"
                  perms = "0600"
                  contents = <<EOT
                {template}EOT
                }}
                """
            )
        )
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        with self.log.open("wb") as log:
            self._popen = subprocess.Popen(
                [str(find_bao()), "agent", f"-config={self.config}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        return self

    def stop(self) -> None:
        if self._popen is not None:
            stop_process(self._popen, timeout=10)

    def __enter__(self) -> AgentProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
