"""Static secrets from AWS Secrets Manager through aiobotocore (extra: ``vault-async[aws]``).

aiobotocore is imported when the first secret is read, not when this module is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection
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
    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession
    from types_aiobotocore_secretsmanager import SecretsManagerClient
    from types_aiobotocore_secretsmanager.type_defs import GetSecretValueResponseTypeDef

__all__ = ["AWS_STAGES", "PROVIDER", "AwsSecretsManagerFetcher", "aws_secrets_manager"]

PROVIDER = "aws-secretsmanager"

DEFAULT_TIMEOUT = 30.0
"""Seconds one read may take, botocore's retries included."""

AWS_STAGES = frozenset({"AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"})
"""Versions read as a VersionStage; any other version string is a VersionId."""

_NO_REGION = "no AWS region: set region_name or AWS_DEFAULT_REGION"

# Error codes of GetSecretValue, by what they mean to the caller.
_NOT_FOUND = frozenset({"ResourceNotFoundException"})
_DENIED = frozenset(
    {
        "AccessDeniedException",
        "DecryptionFailure",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
    }
)
_REJECTED = frozenset(
    {"InvalidParameterException", "InvalidRequestException", "ValidationException"}
)


# botocore and aiobotocore log every response body at DEBUG: for GetSecretValue, the secret.
_BODY_LOGGERS = ("botocore.parsers", "aiobotocore.parsers")


class _DropResponseBodies(logging.Filter):
    """Drops the SDK's "Response body" DEBUG records; its other records pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Response body")


_DROP_BODIES = _DropResponseBodies()


def hide_response_bodies() -> None:
    """Keep secret values out of the logs whatever their level (installed once, global).

    The filter sits on botocore's and aiobotocore's parser loggers, so it also hides the
    response bodies of other AWS clients in the process; nothing else they log changes.
    """
    for name in _BODY_LOGGERS:
        sdk_logger = logging.getLogger(name)
        if _DROP_BODIES not in sdk_logger.filters:
            sdk_logger.addFilter(_DROP_BODIES)


class AwsSecretsManagerFetcher:
    """Calls GetSecretValue with ``SecretId=name`` and a VersionId or VersionStage.

    ``name`` is a secret's name or ARN. The value is SecretString (text) or SecretBinary
    (bytes); the version is the VersionId, and ``stages`` its VersionStages. Pass ``client``
    to use a client you made (it is left open), or the settings to have one made on first use
    (region and credentials otherwise come from the usual AWS environment and files;
    ``config`` sets botocore's retries and timeouts). ``timeout`` bounds one read, retries
    included (botocore's own defaults allow minutes).
    """

    provider = PROVIDER

    def __init__(
        self,
        *,
        client: SecretsManagerClient | None = None,
        session: AioSession | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        config: AioConfig | None = None,
        stages: Collection[str] = AWS_STAGES,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._client = client
        self._session = session
        self._region = region_name
        self._endpoint = endpoint_url
        self._key_id = aws_access_key_id
        self._key = aws_secret_access_key
        self._session_token = aws_session_token
        self._config = config
        self._stages = frozenset(stages)
        self._timeout = timeout
        hide_response_bodies()
        self._exit = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"AwsSecretsManagerFetcher(region_name={self._region!r})"

    async def fetch(self, name: str, version: str | None) -> StaticSecret:
        client = await self._get_client(name)
        pick = (
            {}
            if version is None
            else ({"VersionStage": version} if version in self._stages else {"VersionId": version})
        )
        errors = _sdk_errors()
        try:
            async with asyncio.timeout(self._timeout):
                answer = await _get_secret_value(client, name, pick)
        except TimeoutError as exc:
            raise SecretUnavailable(PROVIDER, name, f"no answer in {self._timeout:g} s") from exc
        except errors.ClientError as exc:
            raise _translate_client_error(
                name, exc.response.get("Error", {}).get("Code", "")
            ) from exc
        except (errors.NoCredentialsError, errors.PartialCredentialsError) as exc:
            raise SecretConfigError(PROVIDER, name, "no usable AWS credentials") from exc
        except errors.NoRegionError as exc:
            raise SecretConfigError(PROVIDER, name, _NO_REGION) from exc
        except errors.BotoCoreError as exc:
            raise SecretUnavailable(
                PROVIDER, name, f"request failed ({type(exc).__name__})"
            ) from exc
        return _to_secret(name, answer)

    async def aclose(self) -> None:
        await self._exit.aclose()

    async def _get_client(self, name: str) -> SecretsManagerClient:
        async with self._lock:
            client = self._client
            if client is None:
                session = self._session or _new_session()
                try:
                    creator = session.create_client(
                        "secretsmanager",
                        region_name=self._region,
                        endpoint_url=self._endpoint,
                        aws_access_key_id=self._key_id,
                        aws_secret_access_key=self._key,
                        aws_session_token=self._session_token,
                        config=self._config,
                    )
                    client = await self._exit.enter_async_context(creator)
                except _sdk_errors().NoRegionError as exc:
                    raise SecretConfigError(PROVIDER, name, _NO_REGION) from exc
                except Exception as exc:
                    raise SecretConfigError(
                        PROVIDER, name, f"cannot make a client ({type(exc).__name__})"
                    ) from exc
                self._client = client
            return client


def aws_secrets_manager(
    *,
    ttl: float = DEFAULT_TTL,
    refresh_interval: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    client: SecretsManagerClient | None = None,
    session: AioSession | None = None,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    config: AioConfig | None = None,
    stages: Collection[str] = AWS_STAGES,
    timeout: float = DEFAULT_TIMEOUT,
) -> CachedSecrets:
    """A cached provider over AWS Secrets Manager (see :class:`AwsSecretsManagerFetcher`)."""
    fetcher = AwsSecretsManagerFetcher(
        client=client,
        session=session,
        region_name=region_name,
        endpoint_url=endpoint_url,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
        config=config,
        stages=stages,
        timeout=timeout,
    )
    return CachedSecrets(fetcher, ttl=ttl, refresh_interval=refresh_interval, clock=clock)


async def _get_secret_value(
    client: SecretsManagerClient, name: str, pick: dict[str, str]
) -> GetSecretValueResponseTypeDef:
    """The one SDK call (its keyword arguments are built, so the stubs cannot check them)."""
    return await client.get_secret_value(SecretId=name, **pick)


def _to_secret(name: str, answer: GetSecretValueResponseTypeDef) -> StaticSecret:
    version = answer.get("VersionId", "")
    stages = tuple(answer.get("VersionStages", ()))
    if "SecretString" in answer:
        return StaticSecret(PROVIDER, name, version, answer["SecretString"], stages)
    if "SecretBinary" in answer:
        return StaticSecret(PROVIDER, name, version, bytes(answer["SecretBinary"]), stages)
    raise SecretNotFound(PROVIDER, name, f"version {version} has no value")


def _translate_client_error(name: str, code: str) -> StaticSecretError:
    if code in _NOT_FOUND:
        return SecretNotFound(PROVIDER, name, f"not found ({code})")
    if code in _DENIED:
        return SecretAccessDenied(PROVIDER, name, f"access denied ({code})")
    if code in _REJECTED:
        return SecretNotFound(PROVIDER, name, f"request rejected ({code})")
    return SecretUnavailable(PROVIDER, name, f"request failed ({code or 'no error code'})")


def _new_session() -> AioSession:
    try:
        from aiobotocore.session import get_session
    except ImportError:
        raise MissingExtra(PROVIDER, "aws", "aiobotocore") from None
    return get_session()


class _Errors:
    """botocore's exception classes, imported with the SDK."""

    def __init__(self) -> None:
        from botocore import exceptions

        self.ClientError = exceptions.ClientError
        self.BotoCoreError = exceptions.BotoCoreError
        self.NoCredentialsError = exceptions.NoCredentialsError
        self.PartialCredentialsError = exceptions.PartialCredentialsError
        self.NoRegionError = exceptions.NoRegionError


def _sdk_errors() -> _Errors:
    try:
        return _Errors()
    except ImportError:
        raise MissingExtra(PROVIDER, "aws", "aiobotocore") from None
