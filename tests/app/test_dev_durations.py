"""`--db-ttl/--db-max-ttl` read durations as Vault does and refuse ones that cannot work."""

from __future__ import annotations

import pytest

from app._durations import check_ttls, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("30s", 30.0), ("2m", 120.0), ("1h30m", 5400.0)]
)
def test_durations_vault_accepts(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5s", "5 s", "1d", "5s5"])
def test_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_ttls_name_the_option_to_fix() -> None:
    assert check_ttls("4s", "10s") == (4.0, 10.0)
    with pytest.raises(ValueError, match=r"^--db-ttl: .*too short"):
        check_ttls("1s", "10s")
    with pytest.raises(ValueError, match=r"^--db-max-ttl: 1m is shorter than --db-ttl 5m"):
        check_ttls("5m", "1m")
