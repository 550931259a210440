"""Lexer and recursive-descent parser for label selector strings.

A faithful port of the grammar in ``k8s.io/apimachinery/pkg/labels/selector.go``,
including its error messages, so that kubectl users see the same text::

    <selector>    ::= <requirement> | <requirement> "," <selector>
    <requirement> ::= [!] KEY [ <set-based> | <exact-match> ]
    <set-based>   ::= ("in" | "notin") "(" VALUE {"," VALUE} ")"
    <exact-match> ::= ("=" | "==" | "!=" | ">" | "<") VALUE

``in``/``notin`` are keywords only where an operator is expected. Building and
validating each requirement is delegated to the caller (``make``), so this module does
not depend on :mod:`kybern.api.labels`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum, auto
from typing import TypeVar

from kybern.api import errors

R = TypeVar("R")


class Tok(Enum):
    ERROR = auto()
    END = auto()
    CLOSE_PAR = auto()
    COMMA = auto()
    NOT = auto()  # "!" (does-not-exist)
    DOUBLE_EQUALS = auto()
    EQUALS = auto()
    GREATER = auto()
    IDENTIFIER = auto()
    IN = auto()
    LESS = auto()
    NOT_EQUALS = auto()
    NOT_IN = auto()
    OPEN_PAR = auto()


_LITERALS = {
    ")": Tok.CLOSE_PAR,
    ",": Tok.COMMA,
    "!": Tok.NOT,
    "==": Tok.DOUBLE_EQUALS,
    "=": Tok.EQUALS,
    ">": Tok.GREATER,
    "in": Tok.IN,
    "<": Tok.LESS,
    "!=": Tok.NOT_EQUALS,
    "notin": Tok.NOT_IN,
    "(": Tok.OPEN_PAR,
}
_OPERATORS = {
    Tok.IN: "in",
    Tok.NOT_IN: "notin",
    Tok.EQUALS: "=",
    Tok.DOUBLE_EQUALS: "==",
    Tok.NOT_EQUALS: "!=",
    Tok.GREATER: "gt",
    Tok.LESS: "lt",
}
_EXPECTED_OPERATORS = "in, notin, =, ==, !=, gt, lt"
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")

Item = tuple[Tok, str]


def lex(text: str) -> list[Item]:
    """All tokens of ``text``, ending with an END token."""
    tokens: list[Item] = []
    pos, size = 0, len(text)
    while True:
        while pos < size and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= size:
            tokens.append((Tok.END, ""))
            return tokens
        scan = _scan_special if text[pos] in _SPECIAL else _scan_identifier
        token, pos = scan(text, pos)
        tokens.append(token)


def _scan_identifier(text: str, pos: int) -> tuple[Item, int]:
    start = pos
    while pos < len(text) and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
        pos += 1
    word = text[start:pos]
    return (_LITERALS.get(word, Tok.IDENTIFIER), word), pos


def _scan_special(text: str, pos: int) -> tuple[Item, int]:
    # Longest run of special characters that still forms a known token.
    buffer, last = "", None
    while pos < len(text) and text[pos] in _SPECIAL:
        candidate = buffer + text[pos]
        if candidate in _LITERALS:
            buffer, last = candidate, (_LITERALS[candidate], candidate)
            pos += 1
        elif last is not None:
            break
        else:
            buffer = candidate
            pos += 1
    if last is None:
        return (Tok.ERROR, f"error expected: keyword found '{buffer}'"), pos
    return last, pos


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = lex(text)
        self.position = 0

    def peek(self) -> Item:
        return _as_value(self.items[self.position])

    def take(self, *, keyword: bool = False) -> Item:
        item = self.items[self.position]
        self.position += 1
        return item if keyword else _as_value(item)


def _as_value(item: Item) -> Item:
    # In value context "in" and "notin" are plain identifiers.
    if item[0] in (Tok.IN, Tok.NOT_IN):
        return Tok.IDENTIFIER, item[1]
    return item


def parse(
    text: str,
    *,
    make: Callable[[str, str, list[str]], R],
    key_error: Callable[[str], str | None],
) -> list[R]:
    """Parse ``text`` into requirements built by ``make(key, operator, values)``.

    ``make`` raises :class:`errors.BadRequest` for invalid requirements; ``key_error``
    returns the message for an invalid key. Raises BadRequest with Kubernetes' text.
    """
    parser = _Parser(text)
    requirements: list[R] = []
    while True:
        token, literal = parser.peek()
        if token == Tok.END:
            return requirements
        if token not in (Tok.IDENTIFIER, Tok.NOT):
            raise errors.BadRequest(
                f"found '{literal}', expected: !, identifier, or 'end of string'"
            )
        try:
            requirements.append(_requirement(parser, make, key_error))
        except errors.BadRequest as err:
            raise errors.BadRequest(f"unable to parse requirement: {err}") from None
        token, literal = parser.take()
        if token == Tok.END:
            return requirements
        if token != Tok.COMMA:
            raise errors.BadRequest(f"found '{literal}', expected: ',' or 'end of string'")
        after, literal = parser.peek()
        if after not in (Tok.IDENTIFIER, Tok.NOT):
            raise errors.BadRequest(f"found '{literal}', expected: identifier after ','")


def _requirement(
    parser: _Parser,
    make: Callable[[str, str, list[str]], R],
    key_error: Callable[[str], str | None],
) -> R:
    key, operator = _key_and_operator(parser, key_error)
    if operator is not None:
        return make(key, operator, [])
    token, literal = parser.take(keyword=True)
    if token not in _OPERATORS:
        raise errors.BadRequest(f"found '{literal}', expected: {_EXPECTED_OPERATORS}")
    operator = _OPERATORS[token]
    values = _set_values(parser) if operator in ("in", "notin") else _exact_value(parser)
    return make(key, operator, sorted(values))


def _key_and_operator(
    parser: _Parser, key_error: Callable[[str], str | None]
) -> tuple[str, str | None]:
    """The key, and "exists"/"!" when the requirement is unary (else None)."""
    token, literal = parser.take()
    negated = token == Tok.NOT
    if negated:
        token, literal = parser.take()
    if token != Tok.IDENTIFIER:
        raise errors.BadRequest(f"found '{literal}', expected: identifier")
    problem = key_error(literal)
    if problem is not None:
        raise errors.BadRequest(problem)
    if negated:
        return literal, "!"  # "!a=b" is "!a" followed by an unexpected "="
    if parser.peek()[0] in (Tok.END, Tok.COMMA):
        return literal, "exists"
    return literal, None


def _set_values(parser: _Parser) -> set[str]:
    token, literal = parser.take()
    if token != Tok.OPEN_PAR:
        raise errors.BadRequest(f"found '{literal}' expected: '('")
    token, literal = parser.peek()
    if token == Tok.CLOSE_PAR:
        parser.take()
        return {""}
    if token not in (Tok.IDENTIFIER, Tok.COMMA):
        raise errors.BadRequest(f"found '{literal}', expected: ',', ')' or identifier")
    values = _identifier_list(parser)
    if parser.take()[0] != Tok.CLOSE_PAR:
        raise errors.BadRequest(f"found '{literal}', expected: ')'")
    return values


def _identifier_list(parser: _Parser) -> set[str]:
    values: set[str] = set()
    while True:
        token, literal = parser.take()
        if token == Tok.IDENTIFIER:
            values.add(literal)
            following, literal = parser.peek()
            if following == Tok.CLOSE_PAR:
                return values
            if following != Tok.COMMA:
                raise errors.BadRequest(f"found '{literal}', expected: ',' or ')'")
        elif token == Tok.COMMA:
            if not values:
                values.add("")  # "(," starts with an empty value
            following = parser.peek()[0]
            if following in (Tok.CLOSE_PAR, Tok.COMMA):
                values.add("")  # ",)" and ",," hold an empty value
                if following == Tok.CLOSE_PAR:
                    return values
        else:
            raise errors.BadRequest(f"found '{literal}', expected: ',', or identifier")


def _exact_value(parser: _Parser) -> set[str]:
    if parser.peek()[0] in (Tok.END, Tok.COMMA):
        return {""}
    token, literal = parser.take()
    if token == Tok.IDENTIFIER:
        return {literal}
    raise errors.BadRequest(f"found '{literal}', expected: identifier")
