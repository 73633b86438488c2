"""A lease id in a request path shows only its last characters in errors and DEBUG logs."""

from __future__ import annotations

import logging
import secrets

import pytest

from vault_async import AsyncVaultClient, VaultError


def _records_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        f"{r.getMessage()} {sorted((k, str(v)) for k, v in r.__dict__.items())}"
        for r in caplog.records
    )


async def test_a_lease_id_in_the_url_is_cut_in_errors_and_logs(
    root_client: AsyncVaultClient, caplog: pytest.LogCaptureFixture
) -> None:
    lease_id = "database/creds/app/" + secrets.token_urlsafe(18)
    unique = lease_id.rsplit("/", 1)[1]
    caplog.set_level(logging.DEBUG, logger="vault_async")
    await root_client.sys.leases.revoke(lease_id)  # an unknown lease: revoking succeeds
    with pytest.raises(VaultError) as info:
        await root_client.sys.leases.renew(lease_id)
    assert info.value.status == 400
    for text in (str(info.value), repr(info.value), str(info.value.path)):
        assert unique not in text, text
        assert unique[-6:] in text, text
    logged = _records_text(caplog)
    assert "sys/leases/revoke/" in logged  # the request was logged, with the path
    assert unique not in logged, logged
    assert unique[-6:] in logged
