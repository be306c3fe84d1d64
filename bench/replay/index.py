"""The compact index of which blocks of a chain hold liquidations.

Only two stdlib arrays per chain are kept: the sorted block offsets (from the window start) that
hold at least one liquidation and the running count of liquidations before each of them. Ten
million events cost at most 80 MB here and nothing elsewhere; the content of a block is derived
from the seed when asked for.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate, compress


@dataclass(frozen=True)
class CrashWindow:
    """A market crash: liquidations burst and volatile prices dip around `center`."""

    center: int  # block offset from the window start
    half_width: int  # blocks
    dip_ppm: int  # price drop of volatile assets at the center, parts per million


@dataclass(frozen=True)
class Segment:
    start: int
    length: int
    events: int


class EventIndex:
    """Sorted block offsets with events and prefix sums of their event counts."""

    __slots__ = ("crashes", "cum", "offsets", "window")

    def __init__(
        self, window: int, offsets: array, cum: array, crashes: tuple[CrashWindow, ...]
    ) -> None:
        self.window = window
        self.offsets = offsets  # array('I'), strictly increasing
        self.cum = cum  # array('I'), len(offsets) + 1, cum[i] = events before offsets[i]
        self.crashes = crashes

    @property
    def total(self) -> int:
        return self.cum[-1]

    @property
    def event_blocks(self) -> int:
        return len(self.offsets)

    def count_at(self, offset: int) -> int:
        i = bisect_left(self.offsets, offset)
        if i < len(self.offsets) and self.offsets[i] == offset:
            return self.cum[i + 1] - self.cum[i]
        return 0

    def span(self, lo: int, hi: int) -> tuple[int, int]:
        """Index range [i, j) of event blocks with lo <= offset <= hi."""
        return bisect_left(self.offsets, lo), bisect_right(self.offsets, hi)

    def events_between(self, lo: int, hi: int) -> int:
        i, j = self.span(lo, hi)
        return self.cum[j] - self.cum[i]

    def nbytes(self) -> int:
        return self.offsets.itemsize * len(self.offsets) + self.cum.itemsize * len(self.cum)


def plan_segments(
    rng: random.Random, window: int, events: int, n_crashes: int | None = None
) -> tuple[tuple[CrashWindow, ...], list[Segment]]:
    """Where the events go: a uniform background plus peaked bursts in a few crash windows
    (three for a few hundred thousand events; more for larger histories, as a longer real
    history would hold more crashes, so that the peak density stays plausible)."""
    if n_crashes is None:
        n_crashes = min(48, max(3, events // 150_000))
    crashes: list[CrashWindow] = []
    slice_ = 0.9 / n_crashes
    for k in range(n_crashes):
        # spread the crash centres over the window, one per slice, jittered by the seed
        center = int(window * (0.06 + slice_ * (k + rng.uniform(0.1, 0.85))))
        half = max(3, int(window * rng.uniform(0.002, 0.007)))
        crashes.append(CrashWindow(center, half, rng.randrange(150_000, 350_000)))
    weights: list[tuple[int, int, float]] = [(0, window, 0.42)]
    shares = [rng.uniform(0.6, 1.4) for _ in crashes]
    total_share = sum(shares)
    for c, s in zip(crashes, shares, strict=True):
        w = 0.58 * s / total_share
        for frac, part in ((1.0, 0.40), (0.33, 0.35), (0.1, 0.25)):
            half = max(1, int(c.half_width * frac))
            start = max(0, c.center - half)
            end = min(window, c.center + half + 1)
            weights.append((start, end - start, w * part))
    segments: list[Segment] = []
    assigned = 0
    for i, (start, length, w) in enumerate(weights):
        n = events - assigned if i == len(weights) - 1 else round(events * w)
        n = max(0, min(n, events - assigned))
        assigned += n
        segments.append(Segment(start, length, n))
    return tuple(crashes), segments


def build_index(seed_material: str, window: int, events: int) -> EventIndex:
    """Scatter `events` liquidations over `window` blocks, deterministically from the seed."""
    if window <= 0:
        raise ValueError("window must be positive")
    rng = random.Random(seed_material)
    crashes, segments = plan_segments(rng, window, events)
    counts = array("I", bytes(4 * window))
    rnd = rng.random
    for seg in segments:
        start, length = seg.start, seg.length
        for _ in range(seg.events):
            counts[start + int(rnd() * length)] += 1
    offsets = array("I", compress(range(window), counts))
    cum = array("I", accumulate(filter(None, counts), initial=0))
    del counts
    return EventIndex(window, offsets, cum, crashes)
