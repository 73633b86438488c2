"""``vault_async.django`` in ``INSTALLED_APPS``: engines start with the process, stop at exit.

``ready()`` starts the lease engine of every alias on this backend (blocking until its first
credential, failing start-up with one line when Vault refuses), so the first request does not
wait for Vault. Without the app, an engine starts on its alias's first connection.

It also turns SIGTERM into a normal exit (``SystemExit(0)``, as ``vault_async.sync`` does, so
atexit revokes the leases) when nothing else handles SIGTERM in this process and ``ready()``
runs in the main thread; servers that handle SIGTERM themselves (gunicorn, uWSGI) exit
normally anyway. Settings:
``VAULT_ASYNC_EAGER_START`` (default True) and ``VAULT_ASYNC_HANDLE_SIGTERM`` (default True).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from django.apps import AppConfig
from django.conf import settings

from ._options import ENGINE, read_options
from ._runtimes import registry

__all__ = ["VaultAsyncConfig", "install_sigterm_exit"]


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def install_sigterm_exit() -> bool:
    """Make SIGTERM raise ``SystemExit`` if nothing handles it yet; True if installed."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        return False
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return True


class VaultAsyncConfig(AppConfig):
    name = "vault_async.django"
    label = "vault_async"
    verbose_name = "Vault database credentials"

    def ready(self) -> None:
        if getattr(settings, "VAULT_ASYNC_HANDLE_SIGTERM", True):
            install_sigterm_exit()
        if not getattr(settings, "VAULT_ASYNC_EAGER_START", True):
            return
        for alias, settings_dict in settings.DATABASES.items():
            if settings_dict.get("ENGINE") == ENGINE:
                registry.get(read_options(alias, settings_dict))
