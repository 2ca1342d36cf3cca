"""The relay's retry schedule, and what the notifications package exposes (no database)."""

from __future__ import annotations

import random

import pytest

import notifications
from notifications import backoff_delay


def test_the_delay_doubles_up_to_the_cap_with_equal_jitter() -> None:
    rng = random.Random(42)
    delays = [backoff_delay(attempt, 30, 3600, rng) for attempt in range(1, 11)]
    caps = [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    for delay, cap in zip(delays, caps, strict=True):
        assert cap / 2 <= delay <= cap
    # seeded: the same schedule every time
    again = random.Random(42)
    assert [backoff_delay(a, 30, 3600, again) for a in range(1, 11)] == delays


def test_the_jitter_spreads_relays_that_failed_together() -> None:
    rng = random.Random(1)
    samples = [backoff_delay(3, 30, 3600, rng) for _ in range(200)]
    assert min(samples) < 70 and max(samples) > 110  # over [60, 120)
    assert len(set(samples)) == 200


@pytest.mark.parametrize("attempt", [0, 1])
def test_the_first_retry_waits_about_the_base_delay(attempt: int) -> None:
    assert 15 <= backoff_delay(attempt, 30, 3600, random.Random(0)) <= 30


def test_huge_attempt_counts_stay_at_the_cap() -> None:
    assert 1800 <= backoff_delay(10_000, 30, 3600, random.Random(0)) <= 3600


def test_all_matches_what_the_package_exposes() -> None:
    exposed = {
        name
        for name, value in vars(notifications).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("notifications.")
    }
    assert exposed <= set(notifications.__all__)
    assert all(hasattr(notifications, name) for name in notifications.__all__)
