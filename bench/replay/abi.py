"""Event topics, call selectors and the hex encoding helpers the replay server builds logs with.

Everything here is plain string building: the server renders thousands of logs per request and
an ABI encoder per log would cost more than the rest of the request.
"""

from __future__ import annotations

from eth_hash.auto import keccak

# Aave V3 Pool
T_LIQUIDATION_CALL = "0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286"
T_RESERVE_DATA_UPDATED = "0x804c9b842b2748a22bb64b345453a3de7ca54a6ca45ce00d415894979e22897a"
# Chainlink DualAggregator
T_NEW_TRANSMISSION = "0xc797025feeeaf2cd924c99e9205acb8ec04d5cad21c41ce637a38fb6dee6016a"
T_NEW_ROUND = "0x0109fc6f55cf40689f02fbaad7af7fe7bbac8a3d2186600afc7d3e10cac60271"
T_ANSWER_UPDATED = "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f"
T_SECONDARY_ROUND_ID_UPDATED = "0x8d530b9ddc4b318d28fdd4c3a21fcfecece54c1a72a824f262985b99afef009b"
T_PRIMARY_FEED_UNLOCKED = "0xda2435684a37fba6f7841e49b59e6ad975e462bbebd28ec9da4ed9746a6992be"
# Atlas
T_SOLVER_TX_RESULT = "0x94e79da376f3bc5202c947c2466a329832d3e9af2f4e094a18c160868453273c"
T_METACALL_RESULT = "0x1c8af9222013876e762969f616bf76d9bd3a356e39ce598256dd515b6cb7f82b"

# eth_call selectors
SEL_GET_ASSET_PRICE = "0xb3596f07"  # AaveOracle.getAssetPrice(address)
SEL_GET_ASSETS_PRICES = "0x9d23d9f2"  # AaveOracle.getAssetsPrices(address[])
SEL_GET_SOURCE_OF_ASSET = "0x92bf2be0"  # AaveOracle.getSourceOfAsset(address)
SEL_BASE_CURRENCY_UNIT = "0x8c89b64f"  # AaveOracle.BASE_CURRENCY_UNIT()
SEL_DECIMALS = "0x313ce567"
SEL_SYMBOL = "0x95d89b41"
SEL_NAME = "0x06fdde03"
SEL_LATEST_ANSWER = "0x50d25bcd"
SEL_DESCRIPTION = "0x7284e416"
# transaction inputs (selectors only matter for realism)
SEL_LIQUIDATION_CALL = "0x00a718a9"
SEL_FORWARD = "0x6fadcf72"
SEL_TRANSMIT = "0xb1dc65a4"
SEL_METACALL = "0x9cb64f5b"

ZERO_WORD = "0" * 64
ZERO_HASH = "0x" + ZERO_WORD
ZERO_ADDRESS = "0x" + "0" * 40
EMPTY_BLOOM = "0x" + "0" * 512
# keccak(rlp([])): the uncle hash of every post-merge block
EMPTY_UNCLES_HASH = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"


def word(value: int) -> str:
    """A uint256 (or a non-negative int192/int256) as 64 hex digits, no prefix."""
    return f"{value:064x}"


def signed_word(value: int) -> str:
    """A two's complement int256 as 64 hex digits."""
    return f"{value & ((1 << 256) - 1):064x}"


def addr_word(address: str) -> str:
    """A 0x-prefixed lowercase address left-padded to one 32-byte word, no prefix."""
    return "000000000000000000000000" + address[2:]


def addr_topic(address: str) -> str:
    return "0x000000000000000000000000" + address[2:]


def int_topic(value: int) -> str:
    return "0x" + f"{value:064x}"


def abi_string(text: str) -> str:
    """ABI encoding of a single `string` return value, 0x-prefixed."""
    raw = text.encode()
    padded = raw.hex().ljust(((len(raw) + 31) // 32) * 64, "0")
    return "0x" + word(32) + word(len(raw)) + padded


def abi_uint(value: int) -> str:
    return "0x" + word(value)


def bloom_hex(items: list[bytes]) -> str:
    """The 2048-bit logs bloom over the given addresses and topics (as raw bytes)."""
    bloom = 0
    for item in items:
        digest = keccak(item)
        for i in (0, 2, 4):
            bloom |= 1 << (((digest[i] << 8) | digest[i + 1]) & 2047)
    return "0x" + f"{bloom:0512x}"
