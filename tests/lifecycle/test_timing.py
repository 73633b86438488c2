"""The pure timing rules: grace, renew delay, rotation lead, backoff."""

from __future__ import annotations

import random

import pytest

from vault_async.lifecycle import _policy as timing


def test_grace_is_ten_to_twenty_percent() -> None:
    rng = random.Random(1)
    graces = [timing.grace_period(100.0, rng) for _ in range(2000)]
    assert all(10.0 <= g < 20.0 for g in graces)
    # The jitter actually spreads: both halves of the range are used.
    assert min(graces) < 12.0
    assert max(graces) > 18.0
    assert timing.grace_period(0.0, rng) == 0.0


def test_renew_delay_is_two_thirds_plus_a_third_of_grace() -> None:
    assert timing.renew_delay(60.0, 9.0) == pytest.approx(43.0)
    assert timing.renew_delay(0.0, 0.0) == 0.0


def test_stop_renewing_inside_grace() -> None:
    assert not timing.should_stop_renewing(60.0, 42.0, 9.0)
    assert timing.should_stop_renewing(10.0, 2.0, 9.0)
    assert timing.should_stop_renewing(5.0, 0.0, 9.0)


def test_capped_when_renewal_gives_less_than_natural() -> None:
    assert timing.is_capped(2.0, 4.0)
    assert not timing.is_capped(59.0, 60.0)  # a second lost to rounding is no cap
    assert not timing.is_capped(4.0, 4.0)


@pytest.mark.parametrize(
    ("natural", "grace", "configured", "expected"),
    [
        (3600.0, 400.0, None, 400.0),  # long lease: the grace wins
        (60.0, 8.0, None, 20.0),  # a third of the lease, below 30 s
        (4.0, 0.6, None, 4.0 / 3.0),  # short test lease
        (3600.0, 400.0, 10.0, 30.0),  # configured below the 30 s floor
        (3600.0, 400.0, 90.0, 90.0),
    ],
)
def test_rotation_lead(
    natural: float, grace: float, configured: float | None, expected: float
) -> None:
    assert timing.rotation_lead(natural, grace, configured) == pytest.approx(expected)


def test_backoff_grows_is_capped_and_floored() -> None:
    rng = random.Random(7)
    maxima = []
    for attempt in range(1, 9):
        samples = [
            timing.backoff_delay(attempt, rng, base=1.0, cap=60.0, floor=0.25) for _ in range(300)
        ]
        assert all(0.25 <= s <= min(60.0, 2.0 ** (attempt - 1)) for s in samples)
        maxima.append(max(samples))
    assert maxima == sorted(maxima[:7]) + maxima[7:]  # grows until the cap
    assert maxima[-1] > 30.0
    capped = [
        timing.backoff_delay(10, rng, base=1.0, cap=60.0, floor=0.25, remaining=5.0)
        for _ in range(300)
    ]
    assert all(0.25 <= s <= 5.0 for s in capped)
    assert timing.backoff_delay(10, rng, base=1.0, cap=60.0, floor=0.25, remaining=0.01) == 0.25
