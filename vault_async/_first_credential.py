"""The first credential: waiting for it, and one line saying why it did not come.

Part of :mod:`vault_async.runtime` (which re-exports :class:`StartupError` and
:func:`wait_first`), kept apart because it is the one job of start-up that explains
failures: the lease engine's handles and the Agent-rendered credential file alike.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import anyio

from ._startup import Diagnosis, Reason, diagnose

if TYPE_CHECKING:
    from .file_credentials import FileCredentials
    from .lifecycle import Lease, ManagedSecret

__all__ = ["StartupError", "first_from_file", "wait_first"]

logger = logging.getLogger("vault_async.runtime")


class StartupError(RuntimeError):
    """The runtime could not get its first token or credential; the message names why.

    ``secret`` and ``kind`` say which handle (``auth/approle``, ``database/creds/app``),
    ``reason`` why (see ``vault_async._startup.Reason``), ``error`` is the last error.
    """

    def __init__(
        self,
        diagnosis: Diagnosis,
        *,
        secret: str,
        kind: str,
        error: BaseException | None,
        addrs: Sequence[str] = (),
    ) -> None:
        super().__init__(diagnosis.text)
        self.addrs = tuple(addrs)
        """Vault's address, or every node's address (several: a failover list was given)."""
        self.reason: Reason = diagnosis.reason
        self.secret = secret
        self.kind = kind
        self.error = error


async def wait_first(
    handle: ManagedSecret,
    timeout: float,  # noqa: ASYNC109
    *,
    addr: str | Sequence[str] = "",
    timeout_name: str = "ready_timeout",
) -> Lease:
    """Wait for a handle's first credential; give up at once on an error retrying won't fix.

    The first failure that retrying may fix (Vault unreachable, sealed) is logged at once,
    with ``addr`` and how long the wait goes on (``timeout_name`` names that setting).
    """
    deadline = anyio.current_time() + timeout
    told = False
    while True:
        remaining = deadline - anyio.current_time()
        try:
            return await handle.wait_ready(timeout=max(0.0, min(0.2, remaining)))
        except TimeoutError:
            error = handle.last_error
            found = diagnose(handle.name, handle.kind, error, addr or "?")
            if found.final or remaining <= 0:
                if not found.final:
                    found = Diagnosis(found.reason, f"{found.text} after {timeout:g} s")
                addrs = (addr,) if isinstance(addr, str) else tuple(addr)
                raise StartupError(
                    found, secret=handle.name, kind=handle.kind, error=error, addrs=addrs
                ) from None
            if error is not None and not told:
                told = True
                logger.warning(
                    "%s; still trying for %g s (%s)", found.text, timeout, timeout_name,
                    extra={"secret": handle.name, "reason": found.reason},
                )


async def first_from_file(
    stack: AsyncExitStack, credentials: FileCredentials, timeout: float  # noqa: ASYNC109
) -> FileCredentials:
    """Start watching the credential file and wait for its first credential."""
    from .file_credentials import CredentialFileError

    await stack.enter_async_context(credentials)
    try:
        await credentials.wait_ready(timeout)
    except CredentialFileError as error:
        raise StartupError(
            Diagnosis("invalid", str(error)),
            secret=credentials.name,
            kind="database_file",
            error=error,
        ) from None
    return credentials
