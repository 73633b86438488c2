"""The fields of every ``lease.*`` log record, built in one place.

Each record names the secret, the seconds of lease left (``ttl``; None when there is no
lease or it does not expire) and the generation; a failure adds the error's class and,
for a :class:`VaultError`, Vault's own words (``errors``, already scrubbed of every string
the request sent and cut to a bounded length) or the client's message. An exception from
anywhere else shows its class only: its message could hold anything.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .._exceptions import VaultError, vault_messages
from ._models import Lease

if TYPE_CHECKING:
    from ._core import Core
    from ._handle import ManagedSecret

__all__ = ["error_fields", "lease_fields", "one_line"]

def one_line(errors: Iterable[str]) -> str:
    """Vault's errors on one line: its "1 error occurred:" wrapper and bullets dropped."""
    return "; ".join(vault_messages(errors))


def error_fields(error: BaseException) -> dict[str, object]:
    """``error_class`` and, when it is safe to show, ``error``."""
    fields: dict[str, object] = {"error_class": type(error).__name__}
    if isinstance(error, VaultError):
        fields["error"] = one_line(error.errors) or one_line([error.message])
    return fields


def lease_fields(
    core: Core,
    handle: ManagedSecret,
    *,
    about: Lease | None = None,
    generation: int | None = None,
    error: BaseException | None = None,
    **more: object,
) -> dict[str, object]:
    """The ``extra`` of a record about ``handle``.

    ``about`` and ``generation`` name the lease concerned when it is not the one in force
    (a replaced lease being revoked); ``more`` are the record's own fields.
    """
    lease = about or handle.current
    ttl: int | None = None
    if lease is not None:
        left = core.expires_at(handle, lease) - core.clock.now()
        ttl = None if math.isinf(left) else max(0, round(left))
    fields: dict[str, object] = {
        "secret": handle.name,
        "ttl": ttl,
        "generation": handle.generation if generation is None else generation,
    }
    if error is not None:
        fields.update(error_fields(error))
    fields.update(more)
    return fields
