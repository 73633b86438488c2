"""The minimal environment a dev-stack child process gets: nothing of this process's secrets.

PostgreSQL runs as another user when the stack runs as root, and any process of that user
reads `/proc/<pid>/environ` of the postmaster: a `VAULT_TOKEN` inherited from the caller
would be that user's to read. Children get an allow-list, never a copy minus a deny-list.
"""

from __future__ import annotations

import os
from pathlib import Path

_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
_PASSED_THROUGH = ("TZ",)  # the clock's zone only; no locale, no library path, no credential


def child_environ(home: Path, *, bindir: Path | None = None) -> dict[str, str]:
    """PATH (with `bindir` first), the C locale, HOME set to `home`, and TZ when it is set."""
    env = {
        "PATH": _SYSTEM_PATH if bindir is None else f"{bindir}:{_SYSTEM_PATH}",
        "HOME": str(home),
        "LANG": "C",
        "LC_ALL": "C",
    }
    for name in _PASSED_THROUGH:
        value = os.environ.get(name)
        if value:
            env[name] = value
    return env
