"""Event topic0 hashes the indexer reads, computed from the canonical signatures at import
(tests/test_abi.py holds them against the published values)."""

from __future__ import annotations

from indexer.abi import topic

LIQUIDATION_CALL = topic("LiquidationCall(address,address,address,uint256,uint256,address,bool)")
NEW_TRANSMISSION = topic(
    "NewTransmission(uint32,int192,address,uint32,int192[],bytes,int192,bytes32,uint40)"
)
NEW_ROUND = topic("NewRound(uint256,address,uint256)")
ANSWER_UPDATED = topic("AnswerUpdated(int256,uint256,uint256)")
SECONDARY_ROUND_ID_UPDATED = topic("SecondaryRoundIdUpdated(uint32)")
PRIMARY_FEED_UNLOCKED = topic("PrimaryFeedUnlocked(uint32)")
SOLVER_TX_RESULT = topic(
    "SolverTxResult(address,address,address,address,uint256,bool,bool,uint256)"
)
#: AaveOracle: an asset's price source was set (by its constructor, governance or a steward).
ASSET_SOURCE_UPDATED = topic("AssetSourceUpdated(address,address)")
#: Aave V3.3+ Pool: a liquidation left debt without collateral (booked as the reserve's
#: deficit), and the Umbrella covered some of a reserve's deficit.
DEFICIT_CREATED = topic("DeficitCreated(address,address,uint256)")
DEFICIT_COVERED = topic("DeficitCovered(address,address,uint256)")
#: ERC-20 Transfer; the treasury's fee is an aToken Transfer (enrich/fees.py).
TRANSFER = topic("Transfer(address,address,uint256)")

ORACLE_TOPICS = {
    NEW_TRANSMISSION: "new_transmission",
    NEW_ROUND: "new_round",
    ANSWER_UPDATED: "answer_updated",
    SECONDARY_ROUND_ID_UPDATED: "secondary_round_id_updated",
    PRIMARY_FEED_UNLOCKED: "primary_feed_unlocked",
}
