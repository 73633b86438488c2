"""The lifecycle package's public surface matches its __all__, and every class says what it is."""

from __future__ import annotations

import vault_async
from vault_async import lifecycle


def test_all_names_exist_and_classes_are_documented() -> None:
    for name in lifecycle.__all__:
        obj = getattr(lifecycle, name)
        if isinstance(obj, type):
            assert obj.__doc__, name


def test_top_level_reexports_the_main_names() -> None:
    for name in ("Lease", "LeaseEvent", "LeaseManager", "ManagedSecret", "SecretState"):
        assert getattr(vault_async, name) is getattr(lifecycle, name)
