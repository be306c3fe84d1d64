"""indexer/abi.py and its callers: selectors and topics derived from signatures equal the
published values, calldata and answers round-trip through eth-abi, and an answer that does
not decode is a bad answer (a price asked again one by one, an unknown fee, no symbol),
never a wrong number."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import eth_abi
import pytest

from indexer import abi
from indexer.abi import BadAnswer, Function
from indexer.decode import topics
from indexer.enrich import fees, prices, reserves, tokens
from indexer.enrich.prices import PriceOracle, check_call_result, check_word
from indexer.rpc.errors import EndpointFault, RpcError

ASSET_A = "0x" + "11" * 20
ASSET_B = "0x" + "22" * 20
ATOKEN = "0x" + "ab" * 20
ORACLE = "0x" + "0c" * 20

# topic0 values as published (aave-svr-facts.md, and the ERC-20 Transfer)
KNOWN_TOPICS = {
    "LIQUIDATION_CALL": "0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286",
    "NEW_TRANSMISSION": "0xc797025feeeaf2cd924c99e9205acb8ec04d5cad21c41ce637a38fb6dee6016a",
    "NEW_ROUND": "0x0109fc6f55cf40689f02fbaad7af7fe7bbac8a3d2186600afc7d3e10cac60271",
    "ANSWER_UPDATED": "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f",
    "SECONDARY_ROUND_ID_UPDATED": (
        "0x8d530b9ddc4b318d28fdd4c3a21fcfecece54c1a72a824f262985b99afef009b"
    ),
    "PRIMARY_FEED_UNLOCKED": "0xda2435684a37fba6f7841e49b59e6ad975e462bbebd28ec9da4ed9746a6992be",
    "SOLVER_TX_RESULT": "0x94e79da376f3bc5202c947c2466a329832d3e9af2f4e094a18c160868453273c",
    "TRANSFER": "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
}


def hexdata(types: Sequence[str], values: Sequence[Any]) -> str:
    return "0x" + eth_abi.encode(list(types), list(values)).hex()


def word(value: int) -> str:
    return hex(value)[2:].rjust(64, "0")


# --------------------------------------------------------------------------- topics
def test_topic_constants_equal_the_published_topic0() -> None:
    for name, value in KNOWN_TOPICS.items():
        assert getattr(topics, name) == value, name
    assert set(topics.ORACLE_TOPICS) == {
        topics.NEW_TRANSMISSION,
        topics.NEW_ROUND,
        topics.ANSWER_UPDATED,
        topics.SECONDARY_ROUND_ID_UPDATED,
        topics.PRIMARY_FEED_UNLOCKED,
    }


def test_topic_of_events_not_subscribed() -> None:
    assert (
        abi.topic("BalanceTransfer(address,address,uint256,uint256)")
        == "0x4beccb90f994c31aced7a23b5611020728a23d8ec5cddd1a3e9d97b96fda8666"
    )
    assert (
        abi.topic("AssetSourceUpdated(address,address)")
        == "0x22c5b7b2d8561d39f7f210b6b326a1aa69f15311163082308ac4877db6339dc1"
    )


# --------------------------------------------------------------------------- Function
def test_selectors_are_keccak_of_the_signature() -> None:
    assert prices.GET_ASSET_PRICE.selector == "0xb3596f07"
    assert prices.GET_ASSETS_PRICES.selector == "0x9d23d9f2"
    assert tokens.DECIMALS.selector == "0x313ce567"
    assert tokens.SYMBOL.selector == tokens.SYMBOL_BYTES32.selector == "0x95d89b41"
    assert reserves.GET_RESERVE_DATA.selector == "0x35ea6a75"
    assert fees.RESERVE_TREASURY_ADDRESS.selector == "0xae167335"
    assert abi.selector("getAssetPrice(address)") == "0xb3596f07"


def test_params_come_from_the_signature() -> None:
    f = Function("f(address[],uint256,(uint8,bytes32)[2])")
    assert f.params == ("address[]", "uint256", "(uint8,bytes32)[2]")
    assert Function("symbol()").params == ()


@pytest.mark.parametrize(
    "signature",
    ["getAssetPrice(uint)", "getAssetPrice(address, uint256)", "getAssetPrice", "f(uint7)", "(x)"],
)
def test_non_canonical_signature_is_refused_at_definition(signature: str) -> None:
    with pytest.raises(ValueError):
        Function(signature)


def test_calldata_is_the_abi_encoding() -> None:
    assert prices.GET_ASSET_PRICE.encode(ASSET_A) == "0xb3596f07" + "0" * 24 + ASSET_A[2:]
    # getAssetsPrices: offset 32, length 2, then one word per address
    expected = "0x9d23d9f2" + word(32) + word(2) + "0" * 24 + ASSET_A[2:] + "0" * 24 + ASSET_B[2:]
    assert prices.GET_ASSETS_PRICES.encode([ASSET_A, ASSET_B]) == expected
    assert tokens.SYMBOL.encode() == "0x95d89b41"


def test_round_trips() -> None:
    values = [0, 1, 10**8, 2**256 - 1]
    assert prices.GET_ASSETS_PRICES.decode_value(hexdata(["uint256[]"], [values])) == tuple(values)
    assert prices.GET_ASSET_PRICE.decode_value(hexdata(["uint256"], [12345])) == 12345
    f = Function("f(address,uint256)", returns=("address", "uint256", "string"))
    answer = hexdata(f.returns, [ATOKEN, 7, "ok"])
    address, number, text = f.decode(answer)
    assert (address.lower(), number, text) == (ATOKEN, 7, "ok")
    calldata = f.encode(ATOKEN, 7)
    assert calldata.startswith(f.selector)
    assert eth_abi.decode(list(f.params), bytes.fromhex(calldata[10:]))[1] == 7


@pytest.mark.parametrize(
    "answer",
    [
        "0x",
        "0x" + word(32) + word(3) + word(1) + word(2),  # array of 3, two elements
        "0x" + word(32),  # offset, no length
        "0x" + word(2**64) + word(1) + word(1),  # offset past the end
        "0x" + word(32) + word(1)[:-2],  # not whole words
        "0x" + "zz" * 32,  # not hex
    ],
)
def test_an_answer_that_does_not_decode_is_a_bad_answer(answer: str) -> None:
    with pytest.raises(BadAnswer):
        prices.GET_ASSETS_PRICES.decode(answer)


def test_truncated_single_word_is_a_bad_answer() -> None:
    with pytest.raises(BadAnswer):
        prices.GET_ASSET_PRICE.decode("0x" + word(5)[:62])
    with pytest.raises(BadAnswer):  # an address with dirty high bytes
        fees.RESERVE_TREASURY_ADDRESS.decode("0x" + "ff" * 32)


# --------------------------------------------------------------------------- prices
def test_decode_prices_wants_exactly_count() -> None:
    answer = hexdata(["uint256[]"], [[5, 6]])
    assert prices.decode_prices(answer, 2) == [5, 6]
    assert prices.decode_prices(answer, 3) is None
    assert prices.decode_prices(answer[:-64], 2) is None


def test_price_calldata_one_asset_or_many() -> None:
    assert prices.price_calldata((ASSET_A,)) == prices.GET_ASSET_PRICE.encode(ASSET_A)
    both = prices.price_calldata((ASSET_A, ASSET_B))
    assert both == prices.GET_ASSETS_PRICES.encode([ASSET_A, ASSET_B])


def test_checks_refuse_what_no_node_should_answer() -> None:
    call = ("eth_call", [{"to": ORACLE, "data": "0x"}, "0x1"])
    for answer in (None, "0x1", "0x" + "0" * 63, "zz"):
        with pytest.raises(EndpointFault):
            check_call_result(call, answer)
    check_call_result(call, "0x")
    with pytest.raises(EndpointFault):  # no contract state at that block: retried
        check_word(call, "0x")
    check_word(call, "0x" + word(1))


class FakeClient:
    """Answers eth_call by calldata, applying the caller's check as the client does."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def batch(self, calls: Sequence[Any], *, check: Any = None) -> list[Any]:
        out = []
        for call in calls:
            data = call[1][0]["data"]
            self.calls.append(data)
            answer = self.answers[data]
            if check is not None and not isinstance(answer, RpcError):
                check(call, answer)
            out.append(answer)
        return out


async def test_one_call_per_block_and_fallbacks() -> None:
    both = prices.price_calldata((ASSET_A, ASSET_B))
    client = FakeClient(
        {
            both: hexdata(["uint256[]"], [[7, 8]]),
            prices.price_calldata((ASSET_A,)): hexdata(["uint256"], [7]),
            prices.price_calldata((ASSET_B,)): RpcError("execution reverted"),
        }
    )
    oracle = PriceOracle(client, ORACLE)  # type: ignore[arg-type]
    got = await oracle.prices([(ASSET_A, 1), (ASSET_B, 1)])
    assert got == {(ASSET_A, 1): 7, (ASSET_B, 1): 8}
    assert client.calls == [both]

    # a batch that reverts, or answers the wrong shape: priced asset by asset, the
    # reverting asset has no price
    for answer in (RpcError("execution reverted"), hexdata(["uint256[]"], [[7]])):
        client.answers[both] = answer
        client.calls.clear()
        oracle = PriceOracle(client, ORACLE)  # type: ignore[arg-type]
        got = await oracle.prices([(ASSET_A, 2), (ASSET_B, 2)])
        assert got == {(ASSET_A, 2): 7, (ASSET_B, 2): None}
        assert len(client.calls) == 3


# --------------------------------------------------------------------------- tokens
def test_symbol_string_bytes32_and_fallbacks() -> None:
    assert tokens.decode_symbol(hexdata(["string"], ["WETH"])) == "WETH"
    assert tokens.decode_symbol("0x" + b"MKR".ljust(32, b"\0").hex()) == "MKR"
    assert tokens.decode_symbol(hexdata(["bytes"], [b"M\xffR"])) == "M\ufffdR"
    assert tokens.decode_symbol("0x") == ""
    assert tokens.decode_symbol("0x" + "00" * 32) == ""
    broken = hexdata(["string"], ["WETH"])[:-64]  # a truncated string is not a bytes32
    assert tokens.decode_symbol(broken) == ""
    assert tokens.decode_symbol("0x" + word(64) + b"MKR".ljust(32, b"\0").hex()) == ""


def test_decimals_is_a_uint8() -> None:
    assert tokens.decode_decimals(hexdata(["uint8"], [18])) == 18
    assert tokens.decode_decimals("0x") is None
    assert tokens.decode_decimals("0x" + word(256)) is None
    assert tokens.decode_decimals(RpcError("execution reverted")) is None


# --------------------------------------------------------------------------- fees
RESERVE_DATA = (
    "(uint256,uint128,uint128,uint128,uint128,uint128,uint40,uint16,"
    "address,address,address,address,uint128,uint128,uint128)"
)


def test_reserve_tokens_from_reserve_data() -> None:
    other, stable, variable = ("0x" + c * 20 for c in ("cd", "ef", "ab"))
    fields = [1, 2, 3, 4, 5, 6, 7, 8, ATOKEN, stable, variable, other, 9, 10, 11]
    answer = hexdata([RESERVE_DATA], [fields])
    assert reserves.reserve_tokens(answer) == (ATOKEN, (variable, stable))
    no_stable = [*fields[:9], reserves.ZERO_ADDRESS, *fields[10:]]
    assert reserves.reserve_tokens(hexdata([RESERVE_DATA], [no_stable])) == (ATOKEN, (variable,))
    unlisted = [0] * 8 + [reserves.ZERO_ADDRESS] * 4 + [0] * 3
    assert reserves.reserve_tokens(hexdata([RESERVE_DATA], [unlisted])) is None
    assert reserves.reserve_tokens(answer[: 2 + 64 * 9]) is None  # another layout
    assert reserves.reserve_tokens(RpcError("execution reverted")) is None
    treasury = hexdata(["address"], [other])
    assert fees._address(fees.RESERVE_TREASURY_ADDRESS, treasury, 0) == other
