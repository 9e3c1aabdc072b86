"""Exact price and size formatting at a pair's precision.

Venues drop trailing zeros on the wire (``0.566`` for ``0.5660``), so every
value is re-expressed with the pair's number of decimals.  Quantizing is done
with ``Inexact`` trapped: a value with more decimals than the pair allows is
an error to report, never something to round silently.
"""

from __future__ import annotations

from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow

from gfws.integrity.values import (
    MAX_ADJUSTED_EXPONENT,
    BadValue,
    PrecisionError,
    bounded,
    non_negative,
    positive,
)

__all__ = ["BadValue", "PairPrecision", "PrecisionError", "bounded", "exact", "non_negative", "positive", "quantum"]

# Quantizing in this context refuses what is inexact and, at no extra cost, what is out of range.
_EXACT = Context(prec=60, Emax=MAX_ADJUSTED_EXPONENT, Emin=-MAX_ADJUSTED_EXPONENT,
                 traps=[Inexact, InvalidOperation, Overflow])


def quantum(decimals: int) -> Decimal:
    """``Decimal('0.01')`` for 2 decimals, ``Decimal('1')`` for 0."""
    return Decimal(1).scaleb(-decimals)


def exact(value: Decimal, step: Decimal) -> Decimal:
    """``value`` with exactly the exponent of ``step``, or PrecisionError."""
    if not value.is_finite():  # NaN quantizes to NaN without a signal
        raise PrecisionError(f"{value} is not a finite number")
    if value and value.adjusted() > MAX_ADJUSTED_EXPONENT:
        raise PrecisionError(f"{value:.3e} is out of range")
    try:
        return value.quantize(step, context=_EXACT)
    except (Inexact, InvalidOperation, Overflow):
        raise PrecisionError(f"{value} has more decimals than {step} allows") from None


class PairPrecision:
    """Decimals of a pair's prices and sizes, as announced by the venue."""

    __slots__ = ("price_decimals", "price_step", "qty_decimals", "qty_step")

    def __init__(self, price_decimals: int, qty_decimals: int) -> None:
        self.price_decimals = price_decimals
        self.qty_decimals = qty_decimals
        self.price_step = quantum(price_decimals)
        self.qty_step = quantum(qty_decimals)

    # exact() inlined: these run for every price and size of every message.
    def price(self, value: Decimal) -> Decimal:
        try:
            if value.is_finite():
                return value.quantize(self.price_step, context=_EXACT)
        except (Inexact, InvalidOperation, Overflow):
            pass
        return exact(value, self.price_step)  # raises the explained error

    def qty(self, value: Decimal) -> Decimal:
        try:
            if value.is_finite():
                return value.quantize(self.qty_step, context=_EXACT)
        except (Inexact, InvalidOperation, Overflow):
            pass
        return exact(value, self.qty_step)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PairPrecision)
            and other.price_decimals == self.price_decimals
            and other.qty_decimals == self.qty_decimals
        )

    def __hash__(self) -> int:
        return hash((self.price_decimals, self.qty_decimals))

    def __repr__(self) -> str:
        return f"PairPrecision(price_decimals={self.price_decimals}, qty_decimals={self.qty_decimals})"
