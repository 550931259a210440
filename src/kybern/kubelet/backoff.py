"""Container restart backoff, as kubelet's ``flowcontrol.Backoff`` applies it (CrashLoopBackOff).

One entry per container (pod uid + container name). A container that exited is restarted at
once the first time; each later restart waits ``10 s``, then ``20 s``, ``40 s`` ... capped at
``300 s``, counted from when the container finished. A container that finishes more than twice
the cap after its last restart (it ran 10 minutes) starts over at 10 s. All times come from the
kubelet's clock (monotonic seconds), so tests drive it with a ``FakeClock``.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL = 10.0
MAX = 300.0


@dataclass
class _Entry:
    duration: float
    last_update: float


class Backoff:
    def __init__(self, *, initial: float = INITIAL, maximum: float = MAX) -> None:
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[str, _Entry] = {}

    def remaining(self, key: str, event_time: float, now: float) -> float:
        """Seconds still to wait before restarting after a finish at ``event_time`` (0: go)."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, event_time):
            return 0.0
        return max(0.0, event_time + entry.duration - now)

    def duration(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.duration if entry else 0.0

    def next(self, key: str, event_time: float, now: float | None = None) -> None:
        """Record a restart after a finish at ``event_time``, made at ``now``: the next one
        waits twice as long. A finish more than twice the cap after the last restart (the
        container ran 10 minutes) starts over at the initial delay."""
        entry = self._entries.get(key)
        stamp = event_time if now is None else now
        if entry is None or self._expired(entry, event_time):
            self._entries[key] = _Entry(self.initial, stamp)
        else:
            entry.duration = min(entry.duration * 2, self.maximum)
            entry.last_update = stamp

    def forget(self, prefix: str) -> None:
        """Drop every entry whose key starts with ``prefix`` (a deleted pod's uid)."""
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]

    def _expired(self, entry: _Entry, event_time: float) -> bool:
        return event_time - entry.last_update > 2 * self.maximum


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String`` for whole seconds: ``10s``, ``1m20s``, ``5m0s``."""
    total = int(seconds)
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
