"""indexer/reorg.py: every decision of the tail, from plain values (no node, no database)."""

from __future__ import annotations

from indexer import reorg
from indexer.fetch.headers import Header


def chain_of(first: int, last: int, fork_at: int | None = None) -> dict[int, Header]:
    """Headers first..last that chain onto each other; from `fork_at` on, another branch."""

    def name(n: int) -> str:
        return f"0x{'b' if fork_at is not None and n >= fork_at else 'a'}{n}"

    return {n: Header(n, name(n), name(n - 1), 1_000 + n) for n in range(first, last + 1)}


def test_window_covers_the_checkpoint_and_the_next_range() -> None:
    assert reorg.header_window(100, 150, 20) == range(100, 121)
    assert reorg.header_window(100, 105, 20) == range(100, 106)
    assert reorg.header_window(-1, 5, 20) == range(0, 6)  # nothing indexed yet
    assert reorg.header_window(100, 90, 20) == range(0)  # head below the checkpoint


def test_advance_when_the_headers_chain_onto_the_stored_block() -> None:
    headers = chain_of(100, 120)
    step = reorg.next_step(100, "0xa100", 150, headers, 20)
    assert step == reorg.Advance(101, 120)
    # A fresh tail (no header kept for the checkpoint) advances too.
    assert reorg.next_step(100, None, 150, headers, 20) == reorg.Advance(101, 120)


def test_idle_when_nothing_is_new() -> None:
    assert reorg.next_step(100, "0xa100", 100, chain_of(100, 100), 20) == reorg.Idle()
    # Head below the checkpoint but nothing stored to compare with: wait, do not guess.
    assert reorg.next_step(100, None, 95, {}, 20) == reorg.Idle()


def test_diverged_when_the_checkpoint_block_changed_or_the_chain_got_shorter() -> None:
    forked = chain_of(100, 120, fork_at=99)  # block 100 itself is now another block
    assert reorg.next_step(100, "0xa100", 150, forked, 20) == reorg.Diverged()
    assert reorg.next_step(100, "0xa100", 95, {}, 20) == reorg.Diverged()


def test_retry_when_the_node_changed_its_mind_while_read() -> None:
    headers = chain_of(100, 120)
    headers[110] = Header(110, "0xa110", "0xzz", 1_110)  # does not chain onto 109
    step = reorg.next_step(100, "0xa100", 150, headers, 20)
    assert isinstance(step, reorg.Retry) and "110" in step.reason


def test_rows_of_another_branch_are_read_again() -> None:
    headers = chain_of(100, 105)
    assert reorg.off_branch([(101, "0xa101"), (105, "0xa105")], headers) is None
    assert isinstance(reorg.off_branch([(103, "0xb103")], headers), reorg.Retry)
    assert isinstance(reorg.off_branch([(106, "0xa106")], headers), reorg.Retry)


def test_common_ancestor() -> None:
    stored = {10: "a", 11: "b", 12: "c"}
    assert reorg.common_ancestor(stored, {10: "a", 11: "b", 12: "x"}) == 11
    assert reorg.common_ancestor(stored, {10: "a", 11: "y", 12: "x"}) == 10
    assert reorg.common_ancestor(stored, {10: "z", 11: "y", 12: "x"}) is None


def test_resolve_rolls_back_within_finality_and_halts_beyond() -> None:
    stored = {n: f"0xa{n}" for n in range(90, 101)}
    canonical = {n: (f"0xa{n}" if n <= 97 else f"0xb{n}") for n in range(90, 101)}
    assert reorg.resolve(100, stored, canonical, 64) == reorg.RollBack(97, "0xa97", 3)
    deep = reorg.resolve(100, stored, canonical, 3)
    assert isinstance(deep, reorg.Halt) and "3 blocks" in deep.message
    nowhere = reorg.resolve(100, stored, {n: "0xc" for n in stored}, 64)
    assert isinstance(nowhere, reorg.Halt) and "unknown" in nowhere.message


def test_header_bookkeeping_bounds() -> None:
    assert reorg.ancestor_search_from(1_000, 64) == 872
    assert reorg.ancestor_search_from(10, 64) == 0
    assert reorg.keep_headers_from(1_000, 64) == 872


def test_a_head_going_back_past_finality_is_an_endpoint_fault() -> None:
    assert reorg.head_fault(1_000, 1_010, 64, 0) is None  # a shallow reorg: plausible
    assert "went back" in (reorg.head_fault(900, 1_000, 64, 0) or "")
    assert "deployment" in (reorg.head_fault(5, -1, 64, 100) or "")
