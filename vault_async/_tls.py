"""The TLS context from the VAULT_CACERT / VAULT_CAPATH / VAULT_CLIENT_* / VAULT_SKIP_VERIFY
settings, built as the Vault CLI builds its own."""

from __future__ import annotations

import logging
import os
import re
import ssl
from pathlib import Path

from ._exceptions import InvalidConfig

__all__ = ["tls_context"]

logger = logging.getLogger("vault_async.client")

_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")


def tls_context(
    *,
    ca_cert: str | None,
    ca_path: str | None,
    skip_verify: bool,
    client_cert: str | None,
    client_key: str | None,
    addr: str,
) -> ssl.SSLContext:
    """A verifying client context; given CAs replace the system's, as with the Vault CLI.

    As there too, VAULT_CACERT wins: with both set, the VAULT_CAPATH directory is not read.
    """
    cadata = ca_directory_pem(ca_path) if ca_path is not None and ca_cert is None else None
    try:
        ctx = ssl.create_default_context(cafile=ca_cert, cadata=cadata)
    except ssl.SSLError as exc:
        raise InvalidConfig(
            f"cannot load the CA certificates (VAULT_CACERT/VAULT_CAPATH): {exc}"
        ) from None
    if skip_verify:
        logger.warning(
            "client.tls_verification_disabled",
            extra={"addr": addr, "setting": "VAULT_SKIP_VERIFY"},
        )
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        try:
            ctx.load_cert_chain(client_cert, client_key)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidConfig(f"cannot load VAULT_CLIENT_CERT/VAULT_CLIENT_KEY: {exc}") from None
    return ctx


def ca_directory_pem(directory: str) -> str:
    """Every PEM certificate in the files under ``directory``, walked as the Vault CLI does.

    No ``c_rehash`` hash links are needed; files holding no certificate are skipped.
    """
    found: list[str] = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = Path(root, name)
            try:
                text = path.read_bytes().decode("latin-1")
            except OSError as exc:
                raise InvalidConfig(
                    f"cannot read {path} in the CA directory (VAULT_CAPATH): {exc.strerror}"
                ) from None
            found.extend(_PEM_CERT.findall(text))
    if not found:
        raise InvalidConfig(f"CA directory (VAULT_CAPATH) holds no PEM certificate: {directory}")
    return "\n".join(found) + "\n"
