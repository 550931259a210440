"""``.dockerignore``: which context paths COPY and ADD may not see.

Follows Docker's matcher (moby/patternmatcher): one pattern per line, ``#`` comments, paths
cleaned and made relative (a leading ``/`` is dropped); ``*`` and ``?`` never cross ``/``,
``**`` matches any number of directories, ``[...]`` classes, and ``!pattern`` re-includes. The
last pattern that matches a path decides; a pattern matching a directory excludes everything
under it (unless a later ``!`` pattern re-includes a path below).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pattern:
    text: str
    regex: re.Pattern[str]
    exclusion: bool  # a "!" pattern: re-includes what it matches


def parse(text: str) -> list[Pattern]:
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        line = line[1:].strip() if exclusion else line
        cleaned = posixpath.normpath(line).lstrip("/")
        if cleaned in ("", "."):
            continue
        patterns.append(Pattern(cleaned, compile_pattern(cleaned), exclusion))
    return patterns


def load(context: Path) -> list[Pattern]:
    path = context / ".dockerignore"
    return parse(path.read_text()) if path.is_file() else []


def compile_pattern(pattern: str) -> re.Pattern[str]:
    out, i, n = ["^"], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):  # "**/" : zero or more directories
                out.append("(?:.*/)?")
                i += 1
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    out.append("$")
    return re.compile("".join(out))


def excluded(path: str, patterns: list[Pattern]) -> bool:
    """Whether the context-relative ``path`` (``a/b/c``) is excluded."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    result = False
    for p in patterns:
        if any(p.regex.match(prefix) for prefix in prefixes):
            result = not p.exclusion
    return result
