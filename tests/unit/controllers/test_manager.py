"""Which controllers the manager runs (kube-controller-manager's --controllers syntax)."""

from __future__ import annotations

import pytest

from kybern.controllers import manager

pytestmark = pytest.mark.timeout(10)
ALL = list(manager.CONTROLLERS)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, ALL),
        (["*"], ALL),
        (["*", "-garbagecollector"], [n for n in ALL if n != "garbagecollector"]),
        (["namespace"], ["namespace"]),
        (["-*"], []),
        (["-*", "serviceaccount"], ["serviceaccount"]),
    ],
)
def test_enabled(spec: list[str] | None, expected: list[str]) -> None:
    assert manager.enabled(spec) == expected


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="bogus"):
        manager.enabled(["bogus"])
