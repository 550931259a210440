"""Quantities: Kubernetes' grammar, error messages and canonical form."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kybern.api import errors, quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Decimal("0.1")),
        ("1Gi", Decimal(2**30)),
        ("1e3", Decimal(1000)),
        ("0.5", Decimal("0.5")),
        ("1Ki", Decimal(1024)),
        ("2k", Decimal(2000)),
        ("1.5Gi", Decimal(1610612736)),
        ("-1", Decimal(-1)),
        ("+2M", Decimal(2_000_000)),
        (".5", Decimal("0.5")),
        ("5.", Decimal(5)),
        ("1E", Decimal(10**18)),
        ("1e-3", Decimal("0.001")),
        ("12n", Decimal("0.000000012")),
        ("3u", Decimal("0.000003")),
        (1, Decimal(1)),
        (0.25, Decimal("0.25")),
    ],
)
def test_parse(text: str | int | float, value: Decimal) -> None:
    assert quantity.parse(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", quantity.FORMAT_WRONG),
        ("abc", quantity.FORMAT_WRONG),
        ("1x", quantity.FORMAT_WRONG),
        (" 1", quantity.FORMAT_WRONG),
        ("1e3.5", quantity.FORMAT_WRONG),
        ("1GG", quantity.SUFFIX),
        ("1K", quantity.SUFFIX),
        ("1e", quantity.SUFFIX),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(quantity.QuantityError) as info:
        quantity.parse(text)
    assert str(info.value) == message
    assert isinstance(info.value, errors.BadRequest)


def test_format_wrong_message_is_kubernetes_text() -> None:
    assert quantity.FORMAT_WRONG == (
        "quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


def test_sub_nano_values_round_up() -> None:
    assert quantity.parse("0.0000000001") == Decimal("1e-9")
    assert quantity.canonical("0.0000000001") == "1n"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1.5", "1500m"),
        ("1000", "1k"),
        ("1500", "1500"),
        ("0.1", "100m"),
        ("1.5Gi", "1536Mi"),
        ("2048Ki", "2Mi"),
        ("1536", "1536"),
        ("512Ki", "512Ki"),
        ("0.5Ki", "512"),
        ("1e3", "1e3"),
        ("1.5e3", "1500"),
        ("-1Gi", "-1Gi"),
        ("0", "0"),
        ("0Gi", "0"),
    ],
)
def test_canonical(text: str, canonical: str) -> None:
    assert quantity.canonical(text) == canonical


def test_milli_and_int_values() -> None:
    assert quantity.milli_value("250m") == 250
    assert quantity.milli_value("1") == 1000
    assert quantity.milli_value("0.0001") == 1
    assert quantity.int_value("1Ki") == 1024
    assert quantity.int_value("1.5") == 2


def test_is_valid() -> None:
    assert quantity.is_valid("1Gi")
    assert quantity.is_valid(3)
    assert not quantity.is_valid("1GG")
    assert not quantity.is_valid(True)
    assert not quantity.is_valid(None)
    assert not quantity.is_valid([1])


_SUFFIXES = ["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "Ti", "n", "u", "e3", "E"]


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(_SUFFIXES))
def test_integer_with_suffix_round_trips_through_canonical(number: int, suffix: str) -> None:
    text = f"{number}{suffix}"
    value = quantity.parse(text)
    assert quantity.parse(quantity.canonical(text)) == value


@given(
    st.decimals(min_value=-(10**9), max_value=10**9, places=3, allow_nan=False),
    st.sampled_from(_SUFFIXES),
)
def test_decimal_with_suffix_round_trips(number: Decimal, suffix: str) -> None:
    text = f"{number:f}{suffix}"
    assert quantity.parse(quantity.canonical(text)) == quantity.parse(text)


@given(st.text(alphabet="0123456789.+-eEinumkKMGTPx ", max_size=8))
def test_parse_never_raises_anything_but_quantity_error(text: str) -> None:
    try:
        quantity.parse(text)
    except quantity.QuantityError:
        pass
