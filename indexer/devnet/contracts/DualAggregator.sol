// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title DualAggregator (devnet)
/// @notice A stand-in for Chainlink's SVR DualAggregator: an OCR2-style price feed with two ways
/// in. `transmit` is the public (primary) route; `transmitSecondary` is the private SVR route
/// that lets a searcher back-run the price update. Events, their signatures and which of them
/// fire follow the real contract, so an indexer sees the same logs:
///  - a new report by either route: NewTransmission, NewRound, AnswerUpdated, and by the
///    secondary route also SecondaryRoundIdUpdated;
///  - a secondary report that the primary route already stored: only SecondaryRoundIdUpdated;
///  - a primary report that the secondary route already stored: only PrimaryFeedUnlocked.
/// The devnet has no OCR network, so signatures are not checked: an allow-list of
/// transmitters per route stands in for them.
contract DualAggregator {
  struct Round {
    int192 answer;
    uint32 observationsTimestamp;
    uint32 transmissionTimestamp;
    bool bySecondary;
    bool primaryLanded;
  }

  event NewTransmission(
    uint32 indexed aggregatorRoundId,
    int192 answer,
    address transmitter,
    uint32 observationsTimestamp,
    int192[] observations,
    bytes observers,
    int192 juelsPerFeeCoin,
    bytes32 configDigest,
    uint40 epochAndRound
  );
  event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);
  event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
  event SecondaryRoundIdUpdated(uint32 indexed secondaryRoundId);
  event PrimaryFeedUnlocked(uint32 indexed primaryRoundId);

  uint8 public constant decimals = 8;
  /// What Chainlink's contract answers; an indexer tells SVR aggregators apart by it.
  string public constant typeAndVersion = "DualAggregator 1.0.0";
  uint256 public constant version = 6;
  string public description;
  address public owner;
  mapping(address => bool) public isPrimaryTransmitter;
  mapping(address => bool) public isSecondaryTransmitter;

  uint32 public latestAggregatorRoundId;
  uint32 public latestSecondaryRoundId;
  mapping(uint32 => Round) internal s_rounds;

  constructor(string memory description_, address[] memory primary, address[] memory secondary) {
    description = description_;
    owner = msg.sender;
    for (uint256 i = 0; i < primary.length; i++) isPrimaryTransmitter[primary[i]] = true;
    for (uint256 i = 0; i < secondary.length; i++) isSecondaryTransmitter[secondary[i]] = true;
  }

  function setTransmitter(address who, bool primary, bool allowed) external {
    require(msg.sender == owner, "only owner");
    if (primary) isPrimaryTransmitter[who] = allowed;
    else isSecondaryTransmitter[who] = allowed;
  }

  /// @notice The public route (selector 0xb1dc65a4, as OCR2's transmit).
  function transmit(
    bytes32[3] calldata reportContext,
    bytes calldata report,
    bytes32[] calldata,
    bytes32[] calldata,
    bytes32
  ) external {
    require(isPrimaryTransmitter[msg.sender], "unauthorized transmitter");
    _report(reportContext, report, false);
  }

  /// @notice The private SVR route (selector 0xba0cb29e).
  function transmitSecondary(
    bytes32[3] calldata reportContext,
    bytes calldata report,
    bytes32[] calldata,
    bytes32[] calldata,
    bytes32
  ) external {
    require(isSecondaryTransmitter[msg.sender], "unauthorized transmitter");
    _report(reportContext, report, true);
  }

  struct Report {
    uint32 observationsTimestamp;
    bytes32 rawObservers;
    int192[] observations;
    int192 juelsPerFeeCoin;
  }

  function _report(bytes32[3] calldata reportContext, bytes calldata report, bool secondary)
    internal
  {
    Report memory r;
    (r.observationsTimestamp, r.rawObservers, r.observations, r.juelsPerFeeCoin) =
      abi.decode(report, (uint32, bytes32, int192[], int192));
    require(r.observations.length > 0 && r.observations.length <= 31, "bad observations");
    uint32 latest = latestAggregatorRoundId;
    Round storage last = s_rounds[latest];
    if (latest != 0 && r.observationsTimestamp <= last.observationsTimestamp) {
      // The same report came in by the other route: only record that it did.
      require(r.observationsTimestamp == last.observationsTimestamp, "stale report");
      if (secondary) {
        require(latestSecondaryRoundId != latest, "report already transmitted");
        latestSecondaryRoundId = latest;
        emit SecondaryRoundIdUpdated(latest);
      } else {
        require(last.bySecondary && !last.primaryLanded, "report already transmitted");
        last.primaryLanded = true;
        emit PrimaryFeedUnlocked(latest);
      }
      return;
    }
    for (uint256 i = 1; i < r.observations.length; i++) {
      require(r.observations[i - 1] <= r.observations[i], "observations not sorted");
    }
    int192 median = r.observations[r.observations.length / 2];
    uint32 roundId = latest + 1;
    latestAggregatorRoundId = roundId;
    s_rounds[roundId] = Round({
      answer: median,
      observationsTimestamp: r.observationsTimestamp,
      transmissionTimestamp: uint32(block.timestamp),
      bySecondary: secondary,
      primaryLanded: !secondary
    });
    _emitTransmission(roundId, median, r, reportContext[0], uint40(uint256(reportContext[1])));
    emit NewRound(roundId, address(0), r.observationsTimestamp);
    emit AnswerUpdated(median, roundId, block.timestamp);
    if (secondary) {
      latestSecondaryRoundId = roundId;
      emit SecondaryRoundIdUpdated(roundId);
    }
  }

  function _emitTransmission(
    uint32 roundId,
    int192 median,
    Report memory r,
    bytes32 configDigest,
    uint40 epochAndRound
  ) internal {
    bytes memory observers = new bytes(r.observations.length);
    for (uint256 i = 0; i < r.observations.length; i++) observers[i] = r.rawObservers[i];
    emit NewTransmission(
      roundId,
      median,
      msg.sender,
      r.observationsTimestamp,
      r.observations,
      observers,
      r.juelsPerFeeCoin,
      configDigest,
      epochAndRound
    );
  }

  // AggregatorV3Interface / AggregatorInterface: the read side AaveOracle and others use.

  function latestAnswer() external view returns (int256) {
    return s_rounds[latestAggregatorRoundId].answer;
  }

  function latestTimestamp() external view returns (uint256) {
    return s_rounds[latestAggregatorRoundId].transmissionTimestamp;
  }

  function latestRound() external view returns (uint256) {
    return latestAggregatorRoundId;
  }

  function getAnswer(uint256 roundId) external view returns (int256) {
    if (roundId > type(uint32).max) return 0;
    return s_rounds[uint32(roundId)].answer;
  }

  function getTimestamp(uint256 roundId) external view returns (uint256) {
    if (roundId > type(uint32).max) return 0;
    return s_rounds[uint32(roundId)].transmissionTimestamp;
  }

  function getRoundData(uint80 roundId)
    public
    view
    returns (uint80, int256, uint256, uint256, uint80)
  {
    require(roundId <= type(uint32).max, "no data present");
    Round memory r = s_rounds[uint32(roundId)];
    return (roundId, r.answer, r.observationsTimestamp, r.transmissionTimestamp, roundId);
  }

  function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
    return getRoundData(latestAggregatorRoundId);
  }
}
