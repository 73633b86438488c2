"""Static secrets from GCP Secret Manager, through Google's async client (extra: ``[gcp]``).

``google-cloud-secret-manager`` is imported when the first secret is read, not when this
module is. Names map to resources as::

    name "db-password", project "my-proj"   ->  projects/my-proj/secrets/db-password/versions/latest
    name "projects/p2/secrets/api-key"      ->  projects/p2/secrets/api-key/versions/latest
    version 3 (or "3", or an alias)         ->  .../versions/3
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._core import DEFAULT_TTL, CachedSecrets
from ._errors import (
    MissingExtra,
    SecretAccessDenied,
    SecretConfigError,
    SecretNotFound,
    SecretUnavailable,
    StaticSecretError,
)
from ._value import StaticSecret

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud.secretmanager import SecretManagerServiceAsyncClient

__all__ = ["PROVIDER", "GcpSecretManagerFetcher", "gcp_secret_manager", "resource_name"]

PROVIDER = "gcp-secretmanager"
DEFAULT_TIMEOUT = 30.0
"""Seconds one read may take, the SDK's retries included."""

_SECRET_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_PROJECT = re.compile(r"[a-z0-9][a-z0-9.:-]{0,62}")
_VERSION = re.compile(r"[A-Za-z0-9_-]{1,63}")
_FULL = re.compile(r"projects/(?P<project>[^/]+)/secrets/(?P<secret>[^/]+)")


# The SDK logs each response at DEBUG (its "client logging"), payload included, base64-encoded.
_TRANSPORT = "google.cloud.secretmanager_v1.services.secret_manager_service.transports."
_RESPONSE_LOGGERS = tuple(_TRANSPORT + t for t in ("grpc_asyncio", "grpc", "rest", "rest_asyncio"))


class _DropResponses(logging.Filter):
    """Drops the SDK's records that carry a response; its request records pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not hasattr(record, "response") and not hasattr(record, "httpResponse")


_DROP_RESPONSES = _DropResponses()


def hide_responses() -> None:
    """Keep payloads out of the logs whatever their level (installed once, global).

    The filter sits on the Secret Manager SDK's transport loggers only.
    """
    for name in _RESPONSE_LOGGERS:
        sdk_logger = logging.getLogger(name)
        if _DROP_RESPONSES not in sdk_logger.filters:
            sdk_logger.addFilter(_DROP_RESPONSES)


def resource_name(project: str | None, name: str, version: str | None) -> str:
    """``projects/P/secrets/N/versions/V`` for ``name`` (an id, or ``projects/P/secrets/N``)."""
    full = _FULL.fullmatch(name)
    if full is not None:
        project, secret = full["project"], full["secret"]
    elif project is None:
        raise SecretConfigError(
            PROVIDER, name, "no project: set project, or name it projects/P/secrets/N"
        )
    else:
        secret = name
    if not _PROJECT.fullmatch(project):
        raise SecretConfigError(PROVIDER, name, f"project {project!r} is not a project id")
    if not _SECRET_ID.fullmatch(secret):
        raise SecretConfigError(PROVIDER, name, "a secret id has 1-255 letters, digits, '_' or '-'")
    version = "latest" if version is None else version
    if not _VERSION.fullmatch(version):
        raise SecretConfigError(PROVIDER, name, f"version {version!r} is not a number or alias")
    return f"projects/{project}/secrets/{secret}/versions/{version}"


class GcpSecretManagerFetcher:
    """Calls AccessSecretVersion and checks the payload's CRC32C when the service sent one.

    The value is the payload's bytes; the version is the number the service resolved
    (``latest`` answers with the real one). Pass ``client`` to use a client you made (it is
    left open), or ``credentials``/``endpoint`` to have one made on first use (without
    credentials, Application Default Credentials).
    """

    provider = PROVIDER

    def __init__(
        self,
        *,
        project: str | None = None,
        client: SecretManagerServiceAsyncClient | None = None,
        credentials: Credentials | None = None,
        endpoint: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._project = project
        self._client = client
        self._owned = client is None
        self._credentials = credentials
        self._endpoint = endpoint
        self._timeout = timeout
        self._lock = asyncio.Lock()
        hide_responses()

    def __repr__(self) -> str:
        return f"GcpSecretManagerFetcher(project={self._project!r})"

    async def fetch(self, name: str, version: str | None) -> StaticSecret:
        resource = resource_name(self._project, name, version)
        client = await self._get_client(name)
        try:
            # The SDK retries UNAVAILABLE for up to a minute whatever ``timeout`` it is given:
            # the deadline here bounds the call with its retries.
            async with asyncio.timeout(self._timeout):
                resolved, data, crc = await _access(client, resource, self._timeout)
        except TimeoutError as exc:
            raise SecretUnavailable(PROVIDER, name, f"no answer in {self._timeout:g} s") from exc
        except Exception as exc:
            raise _translate(name, exc) from exc
        if crc is not None and _crc32c(data) != crc:
            raise SecretUnavailable(PROVIDER, name, "the payload failed its CRC32C check")
        return StaticSecret(PROVIDER, name, resolved.rsplit("/", 1)[-1], data)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._owned:
            await _close(client)

    async def _get_client(self, name: str) -> SecretManagerServiceAsyncClient:
        async with self._lock:
            client = self._client
            if client is None:
                try:
                    from google.api_core.client_options import ClientOptions
                    from google.cloud.secretmanager import SecretManagerServiceAsyncClient
                except ImportError:
                    raise MissingExtra(PROVIDER, "gcp", "google-cloud-secret-manager") from None
                options = ClientOptions(api_endpoint=self._endpoint) if self._endpoint else None
                try:
                    client = SecretManagerServiceAsyncClient(
                        credentials=self._credentials, client_options=options
                    )
                except Exception as exc:
                    raise SecretConfigError(
                        PROVIDER, name, f"cannot make a client ({type(exc).__name__})"
                    ) from exc
                self._client = client
            return client


def gcp_secret_manager(
    *,
    project: str | None = None,
    ttl: float = DEFAULT_TTL,
    refresh_interval: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    client: SecretManagerServiceAsyncClient | None = None,
    credentials: Credentials | None = None,
    endpoint: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> CachedSecrets:
    """A cached provider over GCP Secret Manager (see :class:`GcpSecretManagerFetcher`)."""
    fetcher = GcpSecretManagerFetcher(
        project=project, client=client, credentials=credentials, endpoint=endpoint, timeout=timeout
    )
    return CachedSecrets(fetcher, ttl=ttl, refresh_interval=refresh_interval, clock=clock)


async def _access(
    client: SecretManagerServiceAsyncClient, resource: str, seconds: float
) -> tuple[str, bytes, int | None]:
    """The one SDK call: (resolved version name, payload, its CRC32C if sent)."""
    answer = await client.access_secret_version(name=resource, timeout=seconds)
    payload = answer.payload
    crc = payload.data_crc32c if "data_crc32c" in payload else None
    return answer.name, bytes(payload.data), crc


async def _close(client: SecretManagerServiceAsyncClient) -> None:
    """Close the client's channel (the SDK leaves this method untyped)."""
    await client.transport.close()  # type: ignore[no-untyped-call]


def _crc32c(data: bytes) -> int:
    try:
        import google_crc32c
    except ImportError:
        raise MissingExtra(PROVIDER, "gcp", "google-crc32c") from None
    return int(google_crc32c.value(data))


def _translate(name: str, exc: Exception) -> StaticSecretError:
    """The SDK's errors by what they mean; the message keeps only the error's class."""
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    kind = type(exc).__name__
    if isinstance(exc, api.NotFound):
        return SecretNotFound(PROVIDER, name, f"not found ({kind})")
    if isinstance(exc, api.FailedPrecondition):
        return SecretNotFound(PROVIDER, name, f"version disabled or destroyed ({kind})")
    if isinstance(exc, api.PermissionDenied | api.Unauthenticated | auth.RefreshError):
        return SecretAccessDenied(PROVIDER, name, f"access denied ({kind})")
    if isinstance(exc, api.InvalidArgument | auth.DefaultCredentialsError):
        return SecretConfigError(PROVIDER, name, f"rejected ({kind})")
    return SecretUnavailable(PROVIDER, name, f"request failed ({kind})")
