"""argparse ``type=`` validators: a bad number is refused while the command line is parsed.

argparse names the option and exits with status 2; the message says what was expected and
quotes what was given, e.g. ``argument --topk: expected an integer >= 1, got '0'``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from .._checks import check_int, check_real

__all__ = ["int_at_least", "real_in"]


def int_at_least(low: int) -> Callable[[str], int]:
    """A ``type=`` that reads an integer ``>= low``.

    Example:
        >>> int_at_least(1)("0")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: expected an integer >= 1, got '0'
    """
    expected = f"an integer >= {low}"

    def parse(text: str) -> int:
        try:
            return check_int(expected, int(text), low=low)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None

    parse.__name__ = expected  # argparse's fallback wording, should a message be lost
    return parse


def real_in(
    low: float = -math.inf, high: float = math.inf, *, low_open: bool = False
) -> Callable[[str], float]:
    """A ``type=`` that reads a number in ``[low, high]`` (``(low, high]`` with ``low_open``;
    NaN is never inside).

    Example:
        >>> real_in(0, 1, low_open=True)("1.5")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: expected a number in (0, 1], got '1.5'
    """
    expected = f"a number in {'(' if low_open else '['}{low:g}, {high:g}]"

    def parse(text: str) -> float:
        try:
            return check_real(expected, float(text), low=low, high=high, low_open=low_open)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None

    parse.__name__ = expected
    return parse
