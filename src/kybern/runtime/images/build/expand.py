"""Variable substitution and word splitting, as Docker's Dockerfile shell lexer does them.

``$NAME``, ``${NAME}``, ``${NAME:-default}`` (unset or empty), ``${NAME-default}`` (unset),
``${NAME:+alt}`` (set and not empty), ``${NAME+alt}`` (set) and ``${NAME:?message}``. Single
quotes are literal, double quotes substitute, the escape character (``\\`` or the ``escape``
directive's backtick) escapes the next character; quotes are removed from the result. Used for
the instructions Docker substitutes (FROM, COPY, ADD, ENV, ARG, LABEL, WORKDIR, USER, EXPOSE,
VOLUME, STOPSIGNAL); RUN, CMD and ENTRYPOINT are left to the shell at run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from kybern.runtime.images.build.errors import DockerfileError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Lexer:
    def __init__(self, env: Mapping[str, str], escape: str = "\\") -> None:
        self.env = env
        self.escape = escape

    def word(self, text: str) -> str:
        """``text`` substituted and unquoted, as one word (whitespace kept)."""
        return self._process(text, split=False)[0]

    def words(self, text: str) -> list[str]:
        """``text`` substituted, unquoted and split on unquoted whitespace."""
        return self._process(text, split=True)

    def _process(self, text: str, *, split: bool) -> list[str]:
        words: list[str] = []
        cur: list[str] = []
        in_word = False
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if split and c.isspace():
                if in_word:
                    words.append("".join(cur))
                    cur, in_word = [], False
                i += 1
                continue
            in_word = True
            if c == self.escape:
                cur.append(text[i + 1] if i + 1 < n else c)
                i += 2
            elif c == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise DockerfileError(
                        f"unexpected end of statement while looking for matching ' in {text!r}"
                    )
                cur.append(text[i + 1 : end])
                i = end + 1
            elif c == '"':
                i = self._double(text, i + 1, cur)
            elif c == "$":
                i = self._dollar(text, i, cur)
            else:
                cur.append(c)
                i += 1
        if in_word or not split:
            words.append("".join(cur))
        return words

    def _double(self, text: str, i: int, out: list[str]) -> int:
        while i < len(text):
            c = text[i]
            if c == '"':
                return i + 1
            if c == self.escape and i + 1 < len(text) and text[i + 1] in ('"', "$", self.escape):
                out.append(text[i + 1])
                i += 2
            elif c == "$":
                i = self._dollar(text, i, out)
            else:
                out.append(c)
                i += 1
        raise DockerfileError(
            f'unexpected end of statement while looking for matching " in {text!r}'
        )

    def _dollar(self, text: str, i: int, out: list[str]) -> int:
        """Substitute the reference at ``text[i] == "$"``; returns the index after it."""
        if text.startswith("${", i):
            return self._braced(text, i + 2, out)
        m = _NAME.match(text, i + 1)
        if m is None:
            out.append("$")
            return i + 1
        out.append(self.env.get(m.group(), ""))
        return m.end()

    def _braced(self, text: str, i: int, out: list[str]) -> int:
        m = _NAME.match(text, i)
        if m is None:
            raise DockerfileError(f"bad substitution in {text!r}")
        name, j = m.group(), m.end()
        if text.startswith("}", j):
            out.append(self.env.get(name, ""))
            return j + 1
        op = next((o for o in (":-", ":+", ":?", "-", "+", "?") if text.startswith(o, j)), "")
        if not op:
            raise DockerfileError(f"unsupported modifier in ${{{name}...}} in {text!r}")
        end = _closing_brace(text, j + len(op), self.escape)
        word = Lexer(self.env, self.escape).word(text[j + len(op) : end])
        out.append(self._modifier(name, op, word))
        return end + 1

    def _modifier(self, name: str, op: str, word: str) -> str:
        value = self.env.get(name)
        present = value is not None and (value != "" or ":" not in op)
        if op.endswith("-"):
            return value if present and value is not None else word
        if op.endswith("+"):
            return word if present else ""
        if not present:  # "?" and ":?"
            raise DockerfileError(f"{name}: {word or 'parameter not set'}")
        return value or ""


def _closing_brace(text: str, i: int, escape: str) -> int:
    depth = 1
    while i < len(text):
        if text[i] == escape:
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise DockerfileError(f"missing '}}' in {text!r}")


def key_values(text: str, lexer: Lexer, what: str) -> list[tuple[str, str]]:
    """ENV/LABEL arguments: ``k=v k2="v 2"`` or the legacy ``key value with spaces``."""
    first = text.split(None, 1)
    if not first:
        raise DockerfileError(f"{what} requires at least one argument")
    if "=" not in first[0]:
        if len(first) < 2:
            raise DockerfileError(f"{what} must have two arguments")
        return [(lexer.word(first[0]), lexer.word(first[1]))]
    pairs = []
    for w in lexer.words(text):
        key, sep, value = w.partition("=")
        if not sep or not key:
            raise DockerfileError(f"{what} names can not be blank and need a value: {w!r}")
        pairs.append((key, value))
    return pairs
