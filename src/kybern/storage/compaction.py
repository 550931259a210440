"""The history window: which revisions a backend may forget, and when they were written.

Policy: a revision is compactable when it is BOTH older than ``window_seconds`` AND more than
``window_revisions`` behind the current revision. So history always covers at least the last
5 minutes and at least the last 10,000 revisions (the defaults): a watcher that reconnects
within either bound can resume instead of re-listing. The price is that the store keeps every
write of the last 5 minutes; under very heavy churn that, not the 10,000 revisions, bounds the
file (a revisions-only window is ``window_seconds=0``).

Revisions carry no timestamp on disk. ``RevisionClock`` remembers, in memory, about two
(time, revision) marks per second of writes. After a restart it only knows that everything
present was written before the restart, which errs on the side of keeping history.
"""

from __future__ import annotations

import collections
import threading

DEFAULT_WINDOW_SECONDS = 300.0
DEFAULT_WINDOW_REVISIONS = 10_000


class RevisionClock:
    """Coarse map from time to "the revision committed by then". Thread-safe."""

    def __init__(self, *, granularity: float = 1.0) -> None:
        self._granularity = granularity
        self._marks: collections.deque[tuple[float, int]] = collections.deque()
        self._latest: tuple[float, int] | None = None
        self._lock = threading.Lock()

    def note(self, now: float, rev: int) -> None:
        """Record that ``rev`` was committed at or before ``now``."""
        with self._lock:
            previous, self._latest = self._latest, (now, rev)
            if self._marks and now - self._marks[-1][0] < self._granularity:
                return
            # Keep the last note of the closing period too: it is the best answer for it.
            if previous is not None and (not self._marks or previous[1] > self._marks[-1][1]):
                self._marks.append(previous)
            self._marks.append((now, rev))

    def committed_by(self, cutoff: float) -> int:
        """The highest revision known to be committed at or before ``cutoff`` (0: none)."""
        with self._lock:
            # Marks older than the cutoff are only needed for their revision: keep the newest.
            while len(self._marks) > 1 and self._marks[1][0] <= cutoff:
                self._marks.popleft()
            best = 0
            if self._marks and self._marks[0][0] <= cutoff:
                best = self._marks[0][1]
            if self._latest is not None and self._latest[0] <= cutoff:
                best = max(best, self._latest[1])
            return best


def target(
    *,
    current_rev: int,
    now: float,
    clock: RevisionClock,
    window_seconds: float,
    window_revisions: int,
) -> int:
    """The revision to compact up to under the window policy (may be <= the compacted one)."""
    by_count = current_rev - window_revisions
    if window_seconds <= 0:
        return max(by_count, 0)
    by_time = clock.committed_by(now - window_seconds)
    return max(min(by_count, by_time), 0)
