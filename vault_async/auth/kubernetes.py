"""Kubernetes login with the pod's service-account JWT."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .._models import AuthResult
from ._method import login_request, read_secret_file

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["DEFAULT_JWT_FILE", "KubernetesAuth"]

DEFAULT_JWT_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"


class KubernetesAuth:
    """POST auth/<mount_point>/login with the JWT re-read from its file at each login."""

    def __init__(
        self,
        role: str,
        jwt_file: str | Path = DEFAULT_JWT_FILE,
        mount_point: str = "kubernetes",
    ) -> None:
        self.role = role
        self.jwt_file = Path(jwt_file)
        self.mount_point = mount_point

    def __repr__(self) -> str:
        return f"KubernetesAuth(role={self.role!r}, mount_point={self.mount_point!r})"

    async def login(self, client: AsyncVaultClient) -> AuthResult:
        """Projected tokens rotate, so the file is read every time."""
        jwt = read_secret_file(self.jwt_file, "service-account JWT")
        payload = {"role": self.role, "jwt": jwt}
        return await login_request(client, self.mount_point, "login", payload)
