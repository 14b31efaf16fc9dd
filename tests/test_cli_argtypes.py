"""The argparse ``type=`` validators of ``sureid.cli.argtypes``."""

import argparse
import math

import pytest

from sureid.cli.argtypes import int_at_least, real_in


@pytest.mark.parametrize("text,value", [("1", 1), ("64", 64), ("+3", 3)])
def test_int_at_least_reads_integers(text, value):
    got = int_at_least(1)(text)
    assert got == value and type(got) is int


@pytest.mark.parametrize("low,text", [(1, "0"), (1, "-2"), (0, "-1"), (1, "1.5"), (1, "x"),
                                      (1, "")])
def test_int_at_least_says_what_it_expected_and_got(low, text):
    with pytest.raises(argparse.ArgumentTypeError) as e:
        int_at_least(low)(text)
    assert str(e.value) == f"expected an integer >= {low}, got {text!r}"


def test_real_in_reads_the_interval():
    assert real_in(0, 1)("0") == 0.0 and real_in(0, 1)("1") == 1.0
    assert real_in(0, 1, low_open=True)("1e-3") == 0.001
    assert real_in(0)("inf") == math.inf  # no upper bound: inf is inside, as before


@pytest.mark.parametrize("args,kwargs,text,expected", [
    ((0, 1), {"low_open": True}, "0", "a number in (0, 1]"),
    ((0, 1), {"low_open": True}, "nan", "a number in (0, 1]"),
    ((0, 1), {}, "1.5", "a number in [0, 1]"),
    ((0,), {}, "-1", "a number in [0, inf]"),
    ((0,), {}, "nan", "a number in [0, inf]"),
    ((0,), {}, "three", "a number in [0, inf]"),
])
def test_real_in_says_what_it_expected_and_got(args, kwargs, text, expected):
    with pytest.raises(argparse.ArgumentTypeError) as e:
        real_in(*args, **kwargs)(text)
    assert str(e.value) == f"expected {expected}, got {text!r}"


def test_argparse_names_the_option():
    parser = argparse.ArgumentParser(prog="p", exit_on_error=False)
    parser.add_argument("--topk", type=int_at_least(1))
    with pytest.raises(argparse.ArgumentError, match=r"argument --topk: expected an integer "
                                                     r">= 1, got '0'"):
        parser.parse_args(["--topk", "0"])
