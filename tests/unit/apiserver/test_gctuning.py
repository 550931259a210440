"""The heap freezer freezes at start and then only when the cache has grown by half."""

from __future__ import annotations

import gc

from kybern.apiserver import gctuning


def test_freezes_only_after_enough_growth() -> None:
    size = [0]
    freezer = gctuning.HeapFreezer(lambda: size[0], growth=1.5, minimum=100)
    try:
        freezer.freeze()
        assert gc.get_freeze_count() > 0
        assert freezer.frozen_at == 0
        size[0] = 99
        assert not freezer.check()  # below the minimum
        size[0] = 100
        assert freezer.check()
        assert freezer.frozen_at == 100
        size[0] = 149
        assert not freezer.check()  # grown by less than half
        size[0] = 150
        assert freezer.check()
        assert freezer.freezes == 3
    finally:
        gc.unfreeze()
