"""What happens on a reorg, decided in one place: plain functions of what was read, no
node and no database (the pipeline fetches headers through fetch/ and runs the rollback
through store/rollback.py; the rollups follow the deleted rows through their triggers).

Each poll of the tail reads the head, the stored hash of the checkpoint's block and the
headers from the checkpoint to the end of the next range; `next_step` says what to do:
- `Advance(first, last)`: the headers chain onto what is stored; index first..last.
- `Idle`: nothing new above the checkpoint.
- `Retry(reason)`: the node changed its mind while it was read (headers that do not chain,
  logs of another branch than the headers); nothing is written, the next poll reads again.
- `Diverged`: the checkpoint's block is no longer canonical (its hash changed, or the chain
  got shorter than the checkpoint): the common ancestor must be found.
For a divergence, `resolve` compares the stored headers with the node's canonical ones and
says `RollBack(ancestor)`, or `Halt` when they part deeper than finality (or nowhere in
what is kept): rows called final would be wrong, so an operator must look.
`head_fault` tells a head that went back past finality or below the pools' deployment: a
broken endpoint, not a reorg, so it is never rolled back to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: this module imports nothing that does I/O
    from indexer.fetch.headers import Header


@dataclass(frozen=True, slots=True)
class Advance:
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class Idle:
    pass


@dataclass(frozen=True, slots=True)
class Retry:
    reason: str


@dataclass(frozen=True, slots=True)
class Diverged:
    pass


@dataclass(frozen=True, slots=True)
class RollBack:
    ancestor: int
    ancestor_hash: str
    depth: int


@dataclass(frozen=True, slots=True)
class Halt:
    message: str


TailStep = Advance | Idle | Retry | Diverged


def header_window(checkpoint: int, head: int, max_range: int) -> range:
    """The heights whose headers `next_step` needs: the checkpoint's own (is it still
    canonical?) and those of the next range, at most max_range blocks above it."""
    if head < checkpoint:
        return range(0)
    return range(max(checkpoint, 0), min(head, checkpoint + max_range) + 1)


def next_step(
    checkpoint: int,
    known_hash: str | None,
    head: int,
    headers: Mapping[int, Header],
    max_range: int,
) -> TailStep:
    """What the tail does next, from the stored hash of the checkpoint's block (None when
    its header is not kept: a fresh tail after a backfill) and the headers of
    header_window(checkpoint, head, max_range)."""
    if head < checkpoint:
        return Diverged() if known_hash is not None else Idle()
    mine = headers.get(checkpoint)
    if known_hash is not None and mine is not None and mine.hash != known_hash:
        return Diverged()
    if head == checkpoint:
        return Idle()
    last = header_window(checkpoint, head, max_range).stop - 1
    for number in range(checkpoint + 1, last + 1):
        parent = headers.get(number - 1)
        if parent is not None and headers[number].parent_hash != parent.hash:
            return Retry(f"block {number} does not chain onto block {number - 1}")
    return Advance(checkpoint + 1, last)


def off_branch(rows: Iterable[tuple[int, str]], headers: Mapping[int, Header]) -> Retry | None:
    """Retry when a row's (block number, block hash) is not the header's: the logs were
    served from another branch than the headers."""
    for number, block_hash in rows:
        header = headers.get(number)
        if header is None or header.hash != block_hash:
            return Retry(f"logs of block {number} come from another branch than its header")
    return None


def ancestor_search_from(checkpoint: int, finality_depth: int) -> int:
    """The lowest stored header compared with the node's when looking for the ancestor."""
    return max(0, checkpoint - 2 * finality_depth)


def keep_headers_from(head: int, finality_depth: int) -> int:
    """Headers below this can no longer be reorged (twice finality below the head)."""
    return head - 2 * finality_depth


def common_ancestor(stored: Mapping[int, str], canonical: Mapping[int, str]) -> int | None:
    """Highest height whose stored hash equals the canonical one (None: none agree)."""
    for number in sorted(stored, reverse=True):
        if canonical.get(number) == stored[number]:
            return number
    return None


def resolve(
    checkpoint: int,
    stored: Mapping[int, str],
    canonical: Mapping[int, str],
    finality_depth: int,
) -> RollBack | Halt:
    """Where a divergence is rolled back to, or why it cannot be."""
    ancestor = common_ancestor(stored, canonical)
    if ancestor is None or checkpoint - ancestor >= finality_depth:
        depth = "unknown" if ancestor is None else str(checkpoint - ancestor)
        return Halt(
            f"reorg deeper than finality ({depth} blocks, finality_depth {finality_depth}) "
            f"below block {checkpoint}"
        )
    return RollBack(ancestor, stored[ancestor], checkpoint - ancestor)


def head_fault(head: int, highest_seen: int, finality_depth: int, deployed: int) -> str | None:
    """Why a head cannot be true (None when it can): further back than finality below the
    highest head seen, or below the block the pools were deployed in (which also catches
    it on a first read)."""
    if head < highest_seen - finality_depth:
        return f"head went back from {highest_seen} to {head}"
    if head < deployed:
        return f"head {head} is below the pools' deployment block {deployed}"
    return None
