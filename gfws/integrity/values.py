"""Checks every number from a venue passes, whatever it means: finite, of
sane magnitude, the sign its meaning allows.  A value that fails is an
error to report, never something to pass on or to round."""

from __future__ import annotations

from decimal import Decimal

# No market value needs more than this: anything beyond (1e999999999) is an attack
# or a bug, and writing it out in fixed point would take gigabytes.
MAX_ADJUSTED_EXPONENT = 30


class BadValue(ValueError):
    """A price or size that cannot be right (zero or negative price, ...)."""

    kind = "value"


class PrecisionError(BadValue):
    """A value cannot be expressed exactly at the pair's precision (more
    decimals than the pair has, NaN, Infinity, absurdly large)."""

    kind = "precision"


def bounded(value: Decimal, what: str) -> Decimal:
    """A finite number of sane magnitude (for values not at pair precision:
    VWAP, changes, percentages)."""
    if not value.is_finite():
        raise PrecisionError(f"{what} {value} is not a finite number")
    if not -MAX_ADJUSTED_EXPONENT <= value.adjusted() <= MAX_ADJUSTED_EXPONENT:
        raise PrecisionError(f"{what} {value:.3e} is out of range")
    return value


def positive(value: Decimal, what: str) -> Decimal:
    if not value > 0:
        raise BadValue(f"{what} {value} is not > 0")
    return value


def non_negative(value: Decimal, what: str) -> Decimal:
    if value < 0:
        raise BadValue(f"{what} {value} is negative")
    return value
