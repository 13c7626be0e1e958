"""Argument checks shared by every command, as argparse types (refused at parse time, before any import or work)
and as `check_*` functions for the same rules in Python calls. Each message names the value and the rule."""

from __future__ import annotations

import argparse
import math


def check_rate(name: str, value: float) -> float:
    """A share such as a mask rate: in (0, 1]. (0 masks nothing; above 1 the masking loop can never finish.)"""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value <= 1):
        raise ValueError(f"{name} must be a share in (0, 1], got {value!r}.")
    return float(value)


def check_count(name: str, value: int, minimum: int = 1) -> int:
    """An integer of at least `minimum` (1: a size, k, a batch or step count; 0: a count that may be zero)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        rule = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {rule}, got {value!r}.")
    return value


def check_positive_number(name: str, value: float) -> float:
    """A finite number above 0 (epochs, a learning rate)."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a number above 0, got {value!r}.")
    return float(value)


def _argparse_type(parse, check, what: str):
    def convert(text: str):
        try:
            return check("the value", parse(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    convert.__name__ = what  # argparse names the type in its own messages
    return convert


def _ints(text: str) -> list[int]:
    values = [int(x) for x in text.split(",") if x.strip()]
    if not values:
        raise ValueError(text)
    return values


rate = _argparse_type(float, check_rate, "a share in (0, 1]")
positive_int = _argparse_type(int, check_count, "a positive integer")
non_negative_int = _argparse_type(int, lambda n, v: check_count(n, v, 0), "an integer >= 0")
positive_float = _argparse_type(float, check_positive_number, "a number above 0")
positive_ints = _argparse_type(_ints, lambda n, values: [check_count(n, v) for v in values],
                               "comma-separated positive integers")
