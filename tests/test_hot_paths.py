"""The ingest hot paths (decode, fee matching, USD values, COPY encoding) give exactly what
the plain versions give, and still refuse what a broken node may send."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from indexer.decode.events import DecodeError, Liquidation, decode_liquidation, position
from indexer.decode.topics import LIQUIDATION_CALL
from indexer.enrich.fees import TRANSFER, match_fees
from indexer.enrich.prices import usd
from indexer.store.writer import _literal, encode_copy_text

POOL = "0x" + "aa" * 20
USER = "0x" + "ee" * 20
TREASURY = "0x" + "7e" * 20
ATOKEN = "0x" + "81" * 20


def word(value: int | str) -> str:
    if isinstance(value, str):
        return value[2:].rjust(64, "0")
    return f"{value:064x}"


def liquidation_log(**changes: Any) -> dict[str, Any]:
    log: dict[str, Any] = {
        "address": POOL,
        "topics": [
            LIQUIDATION_CALL,
            "0x" + word("0x" + "01" * 20),
            "0x" + word("0x" + "02" * 20),
            "0x" + word(USER),
        ],
        "data": "0x" + word(123) + word(2**255 + 7) + word("0x" + "ff" * 20) + word(0),
        "blockNumber": "0x10",
        "blockHash": "0x" + "ab" * 32,
        "blockTimestamp": "0x65",
        "transactionHash": "0x" + "cd" * 32,
        "transactionIndex": "0x2",
        "logIndex": "0x3",
    }
    log.update(changes)
    return log


def test_liquidation_fields_and_case() -> None:
    upper = liquidation_log(
        blockHash="0x" + "AB" * 32, transactionHash="0x" + "CD" * 32, address=POOL.upper()
    )
    upper["address"] = "0x" + upper["address"][2:]
    for log in (liquidation_log(), upper):
        liq = decode_liquidation(log)
        assert liq.pos == position(liquidation_log())
        assert (liq.pos.block_number, liq.pos.tx_index, liq.pos.log_index) == (16, 2, 3)
        assert liq.pos.block_time == 0x65 and liq.pos.key == ("0x" + "cd" * 32, 3)
        assert (liq.collateral_asset, liq.debt_asset, liq.user) == (
            "0x" + "01" * 20,
            "0x" + "02" * 20,
            USER,
        )
        assert (liq.debt_to_cover, liq.liquidated_collateral_amount) == (123, 2**255 + 7)
        assert liq.liquidator == "0x" + "ff" * 20 and liq.receive_atoken is False
    assert decode_liquidation(liquidation_log(blockTimestamp=None)).pos.block_time is None


def _with_topic(index: int, value: str) -> dict[str, Any]:
    log = liquidation_log()
    log["topics"] = list(log["topics"])
    log["topics"][index] = value
    return log


@pytest.mark.parametrize(
    "log",
    [
        liquidation_log(transactionHash="0x" + "cd" * 31 + "c\t"),
        liquidation_log(blockHash="0x" + "ab" * 31),
        liquidation_log(address=POOL[:-1] + "g"),
        liquidation_log(data="0x" + word(1) * 3),
        liquidation_log(data=word(1) * 4 + "00"),
        liquidation_log(data="0x" + word(1) * 3 + "z" * 64),
        liquidation_log(blockNumber="ten"),
        liquidation_log(transactionHash=None),
        _with_topic(1, "0x" + "0" * 24 + "01" * 19 + "0\n"),
        _with_topic(3, "0x" + word(USER)[2:]),
        _with_topic(2, 5),
    ],
)
def test_malformed_liquidations_are_refused(log: dict[str, Any]) -> None:
    with pytest.raises(DecodeError):
        decode_liquidation(log)


def test_usd_is_exact() -> None:
    """usd() against the plain fraction amount x price / 10^(decimals + 8)."""
    rng = random.Random(7)
    cases = [(0, 1, 18), (2**256 - 1, 2**256 - 1, 0), (1, 1, 36), (10**6, 10**8, 6)]
    cases += [
        (rng.getrandbits(rng.randrange(1, 257)), rng.getrandbits(rng.randrange(1, 90)), d)
        for d in range(0, 37)
        for _ in range(20)
    ]
    for amount, price, decimals in cases:
        value = usd(amount, price, decimals)
        assert Fraction(value) == Fraction(amount * price, 10 ** (decimals + 8)), (amount, price)


def _reference_fees(
    liquidations: list[Liquidation],
    transfers: list[dict[str, Any]],
    atokens: dict[tuple[str, str], str | None],
    treasury: dict[str, str | None],
) -> dict[tuple[str, int], int | None]:
    """The rule, written plainly: per transaction, in log order, a liquidation's fee is the
    sum of Transfers user -> treasury of its collateral aToken since the previous one."""
    by_tx: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for log in transfers:
        by_tx[log["transactionHash"].lower()].append(log)
    liqs_by_tx: dict[str, list[Liquidation]] = defaultdict(list)
    for liq in liquidations:
        liqs_by_tx[liq.pos.tx_hash].append(liq)
    out: dict[tuple[str, int], int | None] = {}
    for tx, liqs in liqs_by_tx.items():
        previous = -1
        for liq in sorted(liqs, key=lambda item: item.pos.log_index):
            atoken = atokens.get((liq.pos.address, liq.collateral_asset))
            to = treasury.get(atoken) if atoken else None
            if atoken is None or to is None:
                out[liq.pos.key] = None
            else:
                out[liq.pos.key] = sum(
                    int(log["data"], 16)
                    for log in by_tx.get(tx, ())
                    if previous < int(log["logIndex"], 16) < liq.pos.log_index
                    and log["address"].lower() == atoken
                    and len(log["topics"]) == 3
                    and "0x" + log["topics"][1][-40:].lower() == liq.user
                    and "0x" + log["topics"][2][-40:].lower() == to
                )
            previous = liq.pos.log_index
    return out


def test_match_fees_agrees_with_the_rule() -> None:
    rng = random.Random(3)
    assets = ["0x" + f"{i:02x}" * 20 for i in range(1, 5)]
    atokens: dict[tuple[str, str], str | None] = {
        (POOL, a): ("0x" + f"{0x80 + i:02x}" * 20 if i < 3 else None) for i, a in enumerate(assets)
    }
    treasury: dict[str, str | None] = {t: TREASURY for t in atokens.values() if t}
    users = ["0x" + f"{0xE0 + i:02x}" * 20 for i in range(3)]
    logs: list[dict[str, Any]] = []
    transfers: list[dict[str, Any]] = []
    for t in range(300):
        tx = "0x" + f"{t:064x}"
        for index in range(rng.randrange(1, 7)):
            asset, user = rng.choice(assets), rng.choice(users)
            common = {"transactionHash": tx.upper() if t % 7 == 0 else tx}
            if rng.random() < 0.5:
                token = atokens[(POOL, asset)] or ATOKEN
                transfers.append(
                    {
                        **common,
                        "address": token.upper() if t % 5 == 0 else token,
                        "topics": [TRANSFER, "0x" + word(user), "0x" + word(TREASURY)]
                        + (["0x" + word(1)] if rng.random() < 0.1 else []),
                        "data": hex(rng.getrandbits(40)),
                        "logIndex": hex(index),
                    }
                )
            else:
                logs.append(
                    liquidation_log(
                        transactionHash=tx,
                        logIndex=hex(index),
                        topics=[
                            LIQUIDATION_CALL,
                            "0x" + word(asset),
                            "0x" + word(assets[0]),
                            "0x" + word(user),
                        ],
                    )
                )
    liquidations = [decode_liquidation(log) for log in logs]
    fees = match_fees(liquidations, transfers, atokens, treasury)
    assert fees == _reference_fees(liquidations, transfers, atokens, treasury)
    assert None in fees.values() and 0 in fees.values() and max(filter(None, fees.values()))


def test_match_fees_refuses_a_malformed_transfer() -> None:
    liq = decode_liquidation(liquidation_log())
    bad = {
        "transactionHash": liq.pos.tx_hash,
        "address": ATOKEN,
        "topics": [TRANSFER, "0x" + word(USER), "0x" + word(TREASURY)],
        "data": "0xnothex",
        "logIndex": "0x1",
    }
    with pytest.raises(DecodeError):
        match_fees([liq], [bad], {(POOL, liq.collateral_asset): ATOKEN}, {ATOKEN: TREASURY})


def _plain_field(value: Any) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, list):
        return "{" + ",".join('"' + str(v) + '"' for v in value) + "}"
    return str(value)


def test_copy_text_is_the_plain_encoding() -> None:
    when = datetime(2026, 2, 1, 12, 30, 5, tzinfo=UTC)
    rows = [
        (137, 2**255, "0xab", when, None, True, False, Decimal("1.5E-20"), ["1:0xa:2", "x"]),
        (0, -1, "", when, Decimal(0), False, True, Decimal("12345678901234567890.1"), []),
        (1, 1, "split 65/35", datetime(2026, 2, 1, tzinfo=UTC), None, None, None, None, None),
    ]
    plain = "".join("\t".join(map(_plain_field, row)) + "\n" for row in rows).encode()
    assert encode_copy_text(rows) == plain
    assert encode_copy_text([]) == b""


def test_sql_literals() -> None:
    assert _literal(None) == "NULL" and _literal(42) == "42"
    assert _literal("it's a \\ test") == "E'it''s a \\\\ test'"


def test_balance_calldata_and_answer_match_eth_abi() -> None:
    """The direct balanceOf encoding and decoding agree with eth-abi's on every input."""
    from indexer.enrich.closure import BALANCE_OF, _balance, balance_calldata
    from indexer.rpc.errors import RpcError

    rnd = random.Random(7)
    for _ in range(500):
        user = "0x" + f"{rnd.getrandbits(160):040x}"
        assert balance_calldata(user) == BALANCE_OF.encode(user)
        value = rnd.getrandbits(rnd.choice((8, 64, 256)))
        assert _balance("0x" + f"{value:064x}") == value
    # Not one plain word: eth-abi decides (and the answers agree).
    assert _balance("0x" + "00" * 31 + "05" + "ff" * 32) == 5
    assert _balance("0x" + "zz" * 32) is None
    assert _balance("0x" + "0 " * 32) is None
    assert _balance("0x12") is None
    assert _balance(RpcError("execution reverted", 3)) is None
