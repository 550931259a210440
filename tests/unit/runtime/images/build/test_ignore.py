""".dockerignore matching: globs per path segment, **, directories, ! exceptions, order."""

from __future__ import annotations

import pytest

from kybern.runtime.images.build import ignore


def excluded(patterns: str, path: str) -> bool:
    return ignore.excluded(path, ignore.parse(patterns))


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        ("*.log", "a.log", True),
        ("*.log", "dir/a.log", False),  # * never crosses /
        ("**/*.log", "dir/sub/a.log", True),
        ("**/*.log", "a.log", True),
        ("build", "build/x/y.o", True),  # a directory excludes what is under it
        ("/build/", "build/x", True),  # leading / and trailing / cleaned
        ("docs\n!docs/README.md", "docs/README.md", False),
        ("docs\n!docs/README.md", "docs/other.md", True),
        ("!a.txt\n*.txt", "a.txt", True),  # the last match decides
        ("# comment\n\n", "x", False),
        ("te?t", "test", True),
        ("[a-c].md", "b.md", True),
        ("[!a-c].md", "b.md", False),
        ("src/**/gen", "src/a/b/gen/f.go", True),
        ("src/**/gen", "src/gen", True),
    ],
)
def test_matching(patterns: str, path: str, expected: bool) -> None:
    assert excluded(patterns, path) is expected


def test_load_missing_file(tmp_path: object) -> None:
    from pathlib import Path

    assert ignore.load(Path(str(tmp_path))) == []
