"""Input checks shared by every builder: a wrong name or size fails at the door with a
``ValueError`` that says what was expected, never later inside torch."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import TypeVar

T = TypeVar("T")


def check_choice(what: str, value: T, valid: Collection[T] | Mapping[T, object]) -> T:
    """Return ``value`` if it is one of ``valid``, else raise a ValueError listing the options."""
    try:
        known = value in valid
    except TypeError:  # an unhashable value asked of a dict
        known = False
    if isinstance(value, bool) and not any(isinstance(v, bool) for v in valid):
        known = False  # True == 1, but True is not the dimension 1
    if not known:
        raise ValueError(f"unknown {what} {value!r}: expected one of {', '.join(map(str, valid))}")
    return value


def check_int(what: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an int (not a bool) of at least ``minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}, got {value!r}")
    return value


def check_float(
    what: str,
    value: object,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float if it is a finite number in the given interval, else raise.

    The bounds are closed unless ``low_open``/``high_open``: ``check_float("p", p, low=0,
    high=1, high_open=True)`` accepts [0, 1).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{what} must be in {left}{low}, {high}{right}, got {value!r}")
    return float(value)
