"""The public surface: one sorted __all__ that matches what the package exports."""

from __future__ import annotations

import vault_async
from vault_async import auth, secrets, sys


def test_all_is_sorted_and_complete() -> None:
    for module in (vault_async, auth, secrets, sys):
        names = module.__all__
        assert names == sorted(names), module.__name__
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_public_names_are_documented() -> None:
    for name in vault_async.__all__:
        obj = getattr(vault_async, name)
        if isinstance(obj, type):
            assert obj.__doc__, name
