"""Fixtures for the image tests: an empty store in a temporary directory, and one holding the
busybox image built from the host's busybox-static."""

from __future__ import annotations

from pathlib import Path

import pytest

from kybern.runtime.images import model, store
from kybern.testing import images


@pytest.fixture
def image_store(tmp_path: Path) -> store.ImageStore:
    return store.ImageStore(tmp_path / "images")


@pytest.fixture
def busybox(image_store: store.ImageStore) -> model.ImageRecord:
    if not images.busybox_available():
        pytest.skip("busybox-static is not installed (/bin/busybox)")
    return images.import_busybox(image_store)
