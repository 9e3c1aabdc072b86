"""Reconnect backoff: exponential, capped, equal jitter."""

from __future__ import annotations

import pytest

from gfws.connection.backoff import Backoff


def test_ceiling_grows_by_factor_up_to_the_cap():
    b = Backoff(initial=1.0, factor=2.0, cap=60.0, jitter=lambda: 1.0)
    assert [b.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert b.delay(10**6) == 60  # no overflow however long the outage


def test_equal_jitter_draws_in_the_upper_half_of_the_ceiling():
    draws = iter([0.0, 0.5, 0.999])
    b = Backoff(initial=2.0, factor=3.0, cap=100.0, jitter=lambda: next(draws))
    assert [b.delay(n) for n in (1, 2, 3)] == [1.0, 4.5, pytest.approx(17.991)]


def test_invalid_settings_are_refused():
    for kwargs in ({"initial": 0}, {"factor": 0.5}, {"initial": 10, "cap": 5}):
        with pytest.raises(ValueError):
            Backoff(**kwargs)
