"""The errors of the static-secret providers.

The tree::

    StaticSecretError           base; carries .provider and .secret (the secret's name)
    ├── SecretNotFound          no such secret or version (also LookupError)
    ├── SecretAccessDenied      the credentials may not read it, or are rejected
    ├── SecretUnavailable       the service failed or could not be reached
    ├── SecretConfigError       a bad setting or name, found before asking (also ValueError)
    └── MissingExtra            the provider's SDK is not installed (also ImportError)

Messages are one line and name the provider and the secret. They never hold a secret's
value, and never the SDK's own message (which may echo a request).
"""

from __future__ import annotations

__all__ = [
    "MissingExtra",
    "SecretAccessDenied",
    "SecretConfigError",
    "SecretNotFound",
    "SecretUnavailable",
    "StaticSecretError",
]


class StaticSecretError(Exception):
    """Base class of every error a static-secret provider raises."""

    def __init__(self, provider: str, secret: str, message: str) -> None:
        self.provider = provider
        self.secret = secret
        self.message = message
        where = f"{provider} secret {secret!r}" if secret else provider
        super().__init__(f"{where}: {message}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class SecretNotFound(StaticSecretError, LookupError):
    """The secret, or the version asked for, does not exist (or is deleted or disabled)."""


class SecretAccessDenied(StaticSecretError):
    """The provider refused: the credentials lack permission or are not accepted."""


class SecretUnavailable(StaticSecretError):
    """The provider could not answer: unreachable, timed out, or failed on its side."""


class SecretConfigError(StaticSecretError, ValueError):
    """A setting or a secret name is wrong; nothing was sent."""


class MissingExtra(StaticSecretError, ImportError):
    """The provider's SDK is missing: install the extra the message names."""

    def __init__(self, provider: str, extra: str, module: str) -> None:
        super().__init__(provider, "", f"needs {module}: pip install 'vault-async[{extra}]'")
        self.extra = extra
