"""The service's duration settings read alike: `10`, `2.5`, `500ms`, `1m30s`; blank is unset.

VAULT_STARTUP_JITTER is also bounded: a jitter of days would keep a replica unready (its
readiness wait grows by the jitter) instead of failing.
"""

from __future__ import annotations

import pytest

from app.settings import MAX_STARTUP_JITTER, SettingsError, load_settings

from .test_settings import APPROLE

DURATIONS = ("VAULT_STARTUP_TIMEOUT", "VAULT_HEALTH_PROBE_INTERVAL", "VAULT_STARTUP_JITTER")
DEFAULTS = {"VAULT_STARTUP_TIMEOUT": 30.0, "VAULT_HEALTH_PROBE_INTERVAL": 10.0,
            "VAULT_STARTUP_JITTER": 0.0}


def _error(name: str, raw: str) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings({**APPROLE, name: raw})
    line = str(info.value)
    assert line.startswith(f"{name} "), line
    assert "\n" not in line
    return line


@pytest.mark.parametrize("name", DURATIONS)
@pytest.mark.parametrize(
    ("raw", "seconds"), [("12", 12.0), ("2.5", 2.5), ("500ms", 0.5), ("1m30s", 90.0), (" 7s ", 7.0)]
)
def test_every_duration_setting_reads_the_same_forms(name: str, raw: str, seconds: float) -> None:
    assert getattr(load_settings({**APPROLE, name: raw}), name.lower()) == seconds


@pytest.mark.parametrize("name", DURATIONS)
@pytest.mark.parametrize("raw", ["", " ", "\t"])
def test_a_blank_duration_is_unset(name: str, raw: str) -> None:
    assert getattr(load_settings({**APPROLE, name: raw}), name.lower()) == DEFAULTS[name]


@pytest.mark.parametrize("name", DURATIONS)
@pytest.mark.parametrize("raw", ["1_000", "1e3", "inf", "nan", "+5", "-1", "5 s", "soon", "1d"])
def test_every_duration_setting_refuses_the_same_forms(name: str, raw: str) -> None:
    assert "duration" in _error(name, raw)


def test_startup_jitter_has_an_upper_bound() -> None:
    settings = load_settings({**APPROLE, "VAULT_STARTUP_JITTER": f"{MAX_STARTUP_JITTER:g}"})
    assert settings.vault_startup_jitter == MAX_STARTUP_JITTER
    for raw in ("2h", f"{MAX_STARTUP_JITTER + 1:g}", "99999999999999999999"):
        line = _error("VAULT_STARTUP_JITTER", raw)
        assert "at most 10m" in line, line
