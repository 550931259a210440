"""Kubernetes resource quantities: ``100m``, ``1Gi``, ``1e3``, ``0.5``, ``2k``.

``parse`` follows the grammar of apimachinery's ``resource.ParseQuantity`` (sign, digits with
an optional fraction, then a binary-SI, decimal-SI or decimal-exponent suffix) and fails with
the same messages. Values finer than one nano-unit are rounded up to it, as Kubernetes does.
``canonical`` renders a quantity the way the API server serialises it (``1.5`` -> ``1500m``,
``1.5Gi`` -> ``1536Mi``, ``1000`` -> ``1k``).
"""

from __future__ import annotations

import decimal
import functools
import re
from decimal import Decimal

from kybern.api import errors

PATTERN = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
FORMAT_WRONG = f"quantities must match the regular expression '{PATTERN}'"
NUMERIC = "unable to parse numeric part of quantity"
SUFFIX = "unable to parse quantity's suffix"

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXP = {exp: suffix for suffix, exp in _DECIMAL.items()}
_BINARY_BY_EXP = {exp: suffix for suffix, exp in _BINARY.items()}

# The number part as Go's parser scans it; the suffix is whatever follows.
_SPLIT = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(.*)", re.DOTALL)
_SUFFIX_SHAPE = re.compile(r"[eEinumkKMGTP]*[-+]?[0-9]*")
_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)")
_NANO = Decimal("1e-9")
_CONTEXT = decimal.Context(prec=200, rounding=decimal.ROUND_UP)

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"


class QuantityError(errors.BadRequest, ValueError):
    """Text that is not a quantity. A BadRequest: Kubernetes rejects it while decoding."""


def parse(text: str | int | float) -> Decimal:
    """The value of a quantity; QuantityError when ``text`` is not one."""
    return parse_with_format(text)[0]


def parse_with_format(text: str | int | float) -> tuple[Decimal, str]:
    """The value and the format (DecimalSI, BinarySI, DecimalExponent) a quantity was written
    in; canonical output keeps that format."""
    if isinstance(text, bool):
        raise QuantityError(FORMAT_WRONG)
    if not isinstance(text, str):
        text = repr(text) if isinstance(text, float) else str(text)
    return _parse_text(text)


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str) -> tuple[Decimal, str]:
    """Parse one quantity string (cached: the same few quantities recur on every write;
    the result is immutable). Errors are not cached, they are raised each time."""
    if not text:
        raise QuantityError(FORMAT_WRONG)
    match = _SPLIT.fullmatch(text)
    assert match is not None  # the pattern accepts every string
    sign, whole, fraction, suffix = match.groups()
    if not _SUFFIX_SHAPE.fullmatch(suffix):
        raise QuantityError(FORMAT_WRONG)
    scale, fmt = _interpret(suffix)
    digits = f"{whole or '0'}.{fraction or '0'}"
    with decimal.localcontext(_CONTEXT):
        value = Decimal(digits) * scale
        if sign == "-":
            value = -value
        if value.as_tuple().exponent < -9:  # type: ignore[operator]
            value = value.quantize(_NANO)
    return value, fmt


def _interpret(suffix: str) -> tuple[Decimal, str]:
    if suffix in _DECIMAL:
        return Decimal(1).scaleb(_DECIMAL[suffix]), DECIMAL_SI
    if suffix in _BINARY:
        return Decimal(2 ** _BINARY[suffix]), BINARY_SI
    exponent = _EXPONENT.fullmatch(suffix)
    if exponent is None:
        raise QuantityError(SUFFIX)
    power = int(exponent.group(1))
    if abs(power) > 10_000:
        raise QuantityError(NUMERIC)
    return Decimal(1).scaleb(power, _CONTEXT), DECIMAL_EXPONENT


def is_valid(text: object) -> bool:
    if not isinstance(text, str | int | float):
        return False
    try:
        parse(text)
    except QuantityError:
        return False
    return True


def canonical(text: str | int | float) -> str:
    """The form Kubernetes serialises a quantity in."""
    value, fmt = parse_with_format(text)
    return format_value(value, fmt)


def format_value(value: Decimal, fmt: str = DECIMAL_SI) -> str:
    """Render ``value`` canonically in ``fmt`` (BinarySI falls back to DecimalSI for values
    below 1024 in magnitude or with a fractional part, as Kubernetes does)."""
    if value == 0:
        return "0"
    if fmt == BINARY_SI and (abs(value) < 1024 or value != value.to_integral_value()):
        fmt = DECIMAL_SI
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if fmt == BINARY_SI:
        return sign + _binary(int(magnitude))
    mantissa, exponent = _base1000(magnitude)
    if fmt == DECIMAL_EXPONENT:
        return f"{sign}{mantissa}" + (f"e{exponent}" if exponent else "")
    while exponent > 18:
        mantissa, exponent = mantissa * 1000, exponent - 3
    return f"{sign}{mantissa}{_DECIMAL_BY_EXP[exponent]}"


def _base1000(magnitude: Decimal) -> tuple[int, int]:
    """``magnitude`` as an integer times 10**exponent, exponent a multiple of 3 >= -9, with
    the largest exponent that keeps the mantissa whole."""
    with decimal.localcontext(_CONTEXT):
        exponent = -9
        mantissa = int((magnitude.scaleb(9)).to_integral_value())
        while mantissa % 1000 == 0:
            mantissa //= 1000
            exponent += 3
    return mantissa, exponent


def _binary(magnitude: int) -> str:
    exponent = 0
    while magnitude % 1024 == 0 and exponent < 60:
        magnitude //= 1024
        exponent += 10
    return f"{magnitude}{_BINARY_BY_EXP.get(exponent, '')}"


def milli_value(text: str | int | float) -> int:
    """The value in thousandths, rounded up (``250m`` -> 250, ``1`` -> 1000), as used for CPU."""
    with decimal.localcontext(_CONTEXT):
        return int((parse(text) * 1000).to_integral_value(decimal.ROUND_CEILING))


def int_value(text: str | int | float) -> int:
    """The value rounded up to a whole number (bytes for memory)."""
    return int(parse(text).to_integral_value(decimal.ROUND_CEILING))
