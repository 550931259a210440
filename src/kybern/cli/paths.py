"""Where kybern keeps its state by default (shared by every command)."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """``/var/lib/kybern`` as root, else ``$XDG_DATA_HOME/kybern`` (``~/.local/share/kybern``)."""
    if os.geteuid() == 0:
        return Path("/var/lib/kybern")
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(base) / "kybern"
