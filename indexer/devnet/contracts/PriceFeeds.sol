// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

interface IFeed {
  function latestAnswer() external view returns (int256);
  function latestTimestamp() external view returns (uint256);
  function latestRound() external view returns (uint256);
  function getAnswer(uint256 roundId) external view returns (int256);
  function getTimestamp(uint256 roundId) external view returns (uint256);
  function getRoundData(uint80 roundId)
    external
    view
    returns (uint80, int256, uint256, uint256, uint80);
  function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80);
  function decimals() external view returns (uint8);
  function description() external view returns (string memory);
  function version() external view returns (uint256);
}

/// @title FeedProxy (devnet)
/// @notice What an Aave source usually is on Chainlink's side: a proxy (EACAggregatorProxy-like)
/// that forwards every read to its aggregator and names it through aggregator(). Like
/// EACAggregatorProxy it has no typeAndVersion(), so the aggregator must be found behind it.
contract FeedProxy is IFeed {
  address public aggregator;

  constructor(address aggregator_) {
    aggregator = aggregator_;
  }

  function latestAnswer() external view returns (int256) {
    return IFeed(aggregator).latestAnswer();
  }

  function latestTimestamp() external view returns (uint256) {
    return IFeed(aggregator).latestTimestamp();
  }

  function latestRound() external view returns (uint256) {
    return IFeed(aggregator).latestRound();
  }

  function getAnswer(uint256 roundId) external view returns (int256) {
    return IFeed(aggregator).getAnswer(roundId);
  }

  function getTimestamp(uint256 roundId) external view returns (uint256) {
    return IFeed(aggregator).getTimestamp(roundId);
  }

  function getRoundData(uint80 roundId)
    external
    view
    returns (uint80, int256, uint256, uint256, uint80)
  {
    return IFeed(aggregator).getRoundData(roundId);
  }

  function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
    return IFeed(aggregator).latestRoundData();
  }

  function decimals() external view returns (uint8) {
    return IFeed(aggregator).decimals();
  }

  function description() external view returns (string memory) {
    return IFeed(aggregator).description();
  }

  function version() external view returns (uint256) {
    return IFeed(aggregator).version();
  }
}

/// @title CapoAdapter (devnet)
/// @notice Aave's CAPO adapter for an exchange-rate asset (wstETH, LBTC, ...): the asset's price
/// is its base feed's times a ratio, read through BASE_TO_USD_AGGREGATOR(). The devnet's ratio is
/// 1 (RATIO / RATIO_UNIT), so the adapter answers its base feed's price.
contract CapoAdapter {
  IFeed public immutable BASE_TO_USD_AGGREGATOR;
  uint256 public constant RATIO_UNIT = 1e18;
  uint256 public immutable RATIO;

  constructor(IFeed baseToUsd, uint256 ratio) {
    BASE_TO_USD_AGGREGATOR = baseToUsd;
    RATIO = ratio;
  }

  function latestAnswer() external view returns (int256) {
    return (BASE_TO_USD_AGGREGATOR.latestAnswer() * int256(RATIO)) / int256(RATIO_UNIT);
  }

  function decimals() external view returns (uint8) {
    return BASE_TO_USD_AGGREGATOR.decimals();
  }
}

/// @title StableCapoAdapter (devnet)
/// @notice Aave's CAPO adapter for a stablecoin: its feed's price, capped, read through
/// ASSET_TO_USD_AGGREGATOR().
contract StableCapoAdapter {
  IFeed public immutable ASSET_TO_USD_AGGREGATOR;
  int256 public immutable PRICE_CAP;

  constructor(IFeed assetToUsd, int256 priceCap) {
    ASSET_TO_USD_AGGREGATOR = assetToUsd;
    PRICE_CAP = priceCap;
  }

  function latestAnswer() external view returns (int256) {
    int256 answer = ASSET_TO_USD_AGGREGATOR.latestAnswer();
    return answer > PRICE_CAP ? PRICE_CAP : answer;
  }

  function decimals() external view returns (uint8) {
    return ASSET_TO_USD_AGGREGATOR.decimals();
  }
}

/// @title MockFeed (devnet)
/// @notice What Aave's MockAggregator is (latestAnswer, decimals, getTokenType, AnswerUpdated
/// once at construction; no typeAndVersion and nothing behind it), moved by a transaction of
/// its setter: a block's state then shows the price that block ran with, where a storage
/// write between blocks would show in the block before as well.
contract MockFeed {
  int256 internal s_answer;
  address internal immutable i_setter;

  event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

  constructor(int256 answer, address setter) {
    s_answer = answer;
    i_setter = setter;
    emit AnswerUpdated(answer, 0, block.timestamp);
  }

  function setAnswer(int256 answer) external {
    require(msg.sender == i_setter, "only the setter");
    s_answer = answer;
  }

  function latestAnswer() external view returns (int256) {
    return s_answer;
  }

  function getTokenType() external pure returns (uint256) {
    return 1;
  }

  function decimals() external pure returns (uint8) {
    return 8;
  }
}

/// @title PlainAggregator (devnet)
/// @notice A standard (not SVR) Chainlink aggregator: it answers typeAndVersion(), but not with
/// "DualAggregator". The scenario moves it as it moves a MockFeed (setAnswer).
contract PlainAggregator {
  int256 internal s_answer;
  address internal immutable i_setter;

  string public constant typeAndVersion = "AccessControlledOCR2Aggregator 1.0.0";
  uint8 public constant decimals = 8;

  constructor(int256 answer, address setter) {
    s_answer = answer;
    i_setter = setter;
  }

  function setAnswer(int256 answer) external {
    require(msg.sender == i_setter, "only the setter");
    s_answer = answer;
  }

  function latestAnswer() external view returns (int256) {
    return s_answer;
  }

  function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
    return (1, s_answer, block.timestamp, block.timestamp, 1);
  }
}
