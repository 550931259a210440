"""Variable substitution and word splitting as Docker's shell lexer does them."""

from __future__ import annotations

import pytest

from kybern.runtime.images.build import expand
from kybern.runtime.images.build.errors import DockerfileError

ENV = {"A": "apple", "EMPTY": "", "P": "/usr/bin"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$A", "apple"),
        ("${A}s", "apples"),
        ("x$UNSET.y", "x.y"),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${UNSET-dflt}", "dflt"),
        ("${A:-dflt}", "apple"),
        ("${A:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET:+alt}", ""),
        ("${UNSET:-${A}}", "apple"),
        ("'$A'", "$A"),
        ('"$A b"', "apple b"),
        ("\\$A", "$A"),
        ('"\\$A"', "$A"),
        ("$", "$"),
        ("a$1", "a$1"),
        ("$P:/bin", "/usr/bin:/bin"),
    ],
)
def test_word(text: str, expected: str) -> None:
    assert expand.Lexer(ENV).word(text) == expected


def test_words_split_on_unquoted_whitespace() -> None:
    assert expand.Lexer(ENV).words('a "b c"  d\\ e $A') == ["a", "b c", "d e", "apple"]


def test_backtick_escape() -> None:
    assert expand.Lexer(ENV, "`").word("`$A c:\\x") == "$A c:\\x"


def test_required_variable() -> None:
    with pytest.raises(DockerfileError, match="UNSET: needed"):
        expand.Lexer(ENV).word("${UNSET:?needed}")


@pytest.mark.parametrize("text", ["'abc", '"abc', "${A", "${A%x}", "${}"])
def test_malformed(text: str) -> None:
    with pytest.raises(DockerfileError):
        expand.Lexer(ENV).word(text)


class TestKeyValues:
    def test_pairs_with_quotes_and_substitution(self) -> None:
        lexer = expand.Lexer(ENV)
        assert expand.key_values('a=1 b="two words" c=$A', lexer, "ENV") == [
            ("a", "1"),
            ("b", "two words"),
            ("c", "apple"),
        ]

    def test_legacy_form(self) -> None:
        assert expand.key_values("KEY value with  spaces", expand.Lexer(ENV), "ENV") == [
            ("KEY", "value with  spaces")
        ]

    def test_errors(self) -> None:
        lexer = expand.Lexer(ENV)
        with pytest.raises(DockerfileError, match="must have two arguments"):
            expand.key_values("ONLY", lexer, "ENV")
        with pytest.raises(DockerfileError, match="need a value"):
            expand.key_values("a=1 b", lexer, "ENV")
