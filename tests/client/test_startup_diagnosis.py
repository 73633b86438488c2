"""The one-line diagnosis of a failed first credential: Vault's words on one line, no guessing."""

from __future__ import annotations

import ssl

import httpx

from vault_async import Forbidden, InvalidConfig, InvalidRequest, VaultConnectionError
from vault_async._startup import diagnose


def test_go_multierror_becomes_one_quoted_line() -> None:
    error = Forbidden(
        "Forbidden", status=403, errors=["2 errors occurred:\n\t* permission denied\n\t* x\n\n"]
    )
    found = diagnose("database/creds/app", "database_dynamic", error, "http://v:8200")
    assert found.reason == "refused"
    assert found.text == 'database/creds/app refused by Vault: "permission denied"; "x"'


def test_a_token_refusal_names_the_login() -> None:
    error = InvalidRequest("Bad Request", status=400, errors=["invalid role or secret ID"])
    found = diagnose("auth/approle", "token", error, "http://v:8200")
    assert found.text == 'auth/approle login refused by Vault: "invalid role or secret ID"'
    assert found.final


def test_a_tls_reply_to_plain_http_is_recognised() -> None:
    error = InvalidRequest(
        "Bad Request", status=400, errors=["Client sent an HTTP request to an HTTPS server"]
    )
    found = diagnose("auth/approle", "token", error, "http://v:8200")
    assert (found.reason, found.text) == (
        "https_only", "Vault at http://v:8200 speaks HTTPS, not plain HTTP"
    )


def test_plain_http_reply_to_tls_is_recognised() -> None:
    tls = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    tls.reason = "WRONG_VERSION_NUMBER"
    transport = httpx.ConnectError("handshake")
    transport.__cause__ = tls
    error = VaultConnectionError("no response from Vault (ConnectError)")
    error.__cause__ = transport
    found = diagnose("auth/approle", "token", error, "https://v:8200")
    assert (found.reason, found.final) == ("plain_http", True)
    assert found.text == "Vault at https://v:8200 answers plain HTTP, not TLS"


def test_refused_connection_is_retried_not_final() -> None:
    transport = httpx.ConnectError("connect")
    transport.__cause__ = ConnectionRefusedError(111, "Connection refused")
    error = VaultConnectionError("no response from Vault (ConnectError)")
    error.__cause__ = transport
    found = diagnose("auth/approle", "token", error, "http://127.0.0.1:1")
    assert (found.reason, found.final) == ("unreachable", False)
    assert found.text == "Vault at http://127.0.0.1:1 is not answering (connection refused)"


def test_a_bad_argument_is_final_and_keeps_its_message() -> None:
    error = InvalidConfig("cannot read secret_id file '/x': No such file or directory")
    found = diagnose("auth/approle", "token", error, "http://v:8200")
    assert (found.reason, found.final) == ("invalid", True)
    assert found.text == "auth/approle: cannot read secret_id file '/x': No such file or directory"


def test_an_unreachable_cluster_names_every_node() -> None:
    transport = httpx.ConnectError("connect")
    transport.__cause__ = ConnectionRefusedError(111, "Connection refused")
    error = VaultConnectionError("no response from any of 2 Vault nodes")
    error.__cause__ = transport
    addrs = ("http://127.0.0.1:1", "http://127.0.0.1:2")
    found = diagnose("auth/approle", "token", error, addrs)
    assert (found.reason, found.final) == ("unreachable", False)
    assert found.text == (
        "none of the 2 Vault nodes is answering (http://127.0.0.1:1, http://127.0.0.1:2; "
        "connection refused)"
    )
