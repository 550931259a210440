"""Looking into an image's layers without mounting: stat through whiteouts, users and groups."""

from __future__ import annotations

from pathlib import Path

import pytest

from kybern.runtime.images import unpack
from kybern.runtime.images.build.errors import BuildError
from kybern.runtime.images.build.imageview import ImageView, resolve_user

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\nnobody:x:65534:65534\n"
GROUP = "root:x:0:\napp:x:1001:\nextra:x:2000:app,other\nnobody:x:65534:\n"


def test_stat_through_layers_and_whiteouts(tmp_path: Path) -> None:
    low, high = tmp_path / "low", tmp_path / "high"
    (low / "etc").mkdir(parents=True)
    (low / "etc" / "passwd").write_text(PASSWD)
    (low / "var" / "www").mkdir(parents=True)
    (high / "var").mkdir(parents=True)
    (high / "var" / (unpack.WHITEOUT_PREFIX + "www")).touch()
    (high / "etc").mkdir()
    (high / "etc" / "passwd").write_text("newer")
    view = ImageView([low, high])
    assert view.stat("etc") is not None
    assert view.stat("var/www") is None
    assert view.stat("nothing") is None
    assert view.read_text("etc/passwd") == "newer"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("root", (0, 0, [])),
        ("app", (1000, 1001, [2000])),
        ("app:extra", (1000, 2000, [2000])),
        ("1000", (1000, 1001, [2000])),
        ("4242", (4242, 0, [])),
        ("4242:7", (4242, 7, [])),
        ("nobody:nobody", (65534, 65534, [])),
    ],
)
def test_resolve_user(spec: str, expected: tuple[int, int, list[int]]) -> None:
    assert resolve_user(spec, PASSWD, GROUP) == expected


def test_unknown_user_and_group() -> None:
    with pytest.raises(BuildError, match="unable to find user ghost"):
        resolve_user("ghost", PASSWD, GROUP)
    with pytest.raises(BuildError, match="unable to find group ghosts"):
        resolve_user("app:ghosts", PASSWD, GROUP)
