// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title DualAggregator (devnet)
/// @notice A stand-in for Chainlink's SVR DualAggregator ("DualAggregator 1.0.0"): an OCR2-style
/// feed with two ways in, `transmit` (the public, primary route) and `transmitSecondary` (the
/// private SVR route a searcher back-runs). What it stores, which events fire, in which order,
/// and what each reader sees follow the real contract, so an indexer meets the same logs:
///  - a new report by the secondary route: SecondaryRoundIdUpdated, NewTransmission, NewRound,
///    AnswerUpdated (in that order); by the primary route the last three;
///  - a catch-up: the secondary route bringing a report already stored (matched on
///    observationsTimestamp and median, at most maxSyncIterations rounds back) emits only
///    SecondaryRoundIdUpdated of that round, which may be older than the latest;
///  - the primary route bringing the report the secondary route just stored (same
///    epochAndRound) emits only PrimaryFeedUnlocked;
///  - a report older than the latest (by epochAndRound) reverts with StaleReport;
///  - the SVR proxy reads the latest secondary round while it is younger than cutoffTime, then
///    the freshest round that is that secondary round or older than the cutoff; anyone else
///    reads the latest round (a secondary round recorded in the current block as latest - 1).
/// The devnet has no OCR network: an allow-list of transmitters per route stands in for the
/// signatures. Where the real contract has one immutable secondary proxy, this one has a set
/// (setSecondaryProxy), because the devnet's Aave sources reach one aggregator by several
/// paths (an AaveOracle directly, feed proxies).
contract DualAggregator {
  struct Transmission {
    int192 answer;
    uint32 observationsTimestamp;
    uint32 recordedTimestamp;
  }

  struct Report {
    uint32 observationsTimestamp;
    bytes observers;
    int192[] observations;
    int192 juelsPerFeeCoin;
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
  event CutoffTimeSet(uint32 cutoffTime);
  event MaxSyncIterationsSet(uint32 maxSyncIterations);

  error StaleReport();
  error UnauthorizedTransmitter();
  error ConfigDigestMismatch();
  error BadObservations();
  error OnlyOwner();

  uint8 public constant decimals = 8;
  /// What Chainlink's contract answers; an indexer tells SVR aggregators apart by it.
  string public constant typeAndVersion = "DualAggregator 1.0.0";
  uint256 public constant version = 6;
  string public description;
  address public owner;
  mapping(address => bool) public isPrimaryTransmitter;
  mapping(address => bool) public isSecondaryTransmitter;
  mapping(address => bool) public isSecondaryProxy;

  bytes32 internal s_configDigest;
  uint40 internal s_latestEpochAndRound;
  uint32 internal s_latestAggregatorRoundId;
  uint32 internal s_latestSecondaryRoundId;
  /// The round the secondary route stored that the primary route has not brought yet.
  uint32 internal s_unlockPendingRoundId;
  uint32 internal s_cutoffTime;
  uint32 internal s_maxSyncIterations;
  mapping(uint32 => Transmission) internal s_transmissions;

  constructor(
    string memory description_,
    address[] memory primary,
    address[] memory secondary,
    uint32 cutoffTime_,
    uint32 maxSyncIterations_
  ) {
    description = description_;
    owner = msg.sender;
    for (uint256 i = 0; i < primary.length; i++) isPrimaryTransmitter[primary[i]] = true;
    for (uint256 i = 0; i < secondary.length; i++) isSecondaryTransmitter[secondary[i]] = true;
    s_configDigest = keccak256(abi.encode(block.chainid, address(this), uint64(1)));
    s_cutoffTime = cutoffTime_;
    s_maxSyncIterations = maxSyncIterations_;
    emit CutoffTimeSet(cutoffTime_);
    emit MaxSyncIterationsSet(maxSyncIterations_);
  }

  /// @notice Allow or remove a reader that gets the secondary (SVR) view.
  function setSecondaryProxy(address proxy, bool allowed) external {
    if (msg.sender != owner) revert OnlyOwner();
    isSecondaryProxy[proxy] = allowed;
  }

  /// @notice As OCR2's: the config digest reports must carry and the latest epoch.
  function latestConfigDigestAndEpoch()
    external
    view
    returns (bool scanLogs, bytes32 configDigest, uint32 epoch)
  {
    return (false, s_configDigest, uint32(s_latestEpochAndRound >> 8));
  }

  // --- transmission -----------------------------------------------------------------------

  /// @notice The public route (selector 0xb1dc65a4, as OCR2's transmit).
  function transmit(
    bytes32[3] calldata reportContext,
    bytes calldata report,
    bytes32[] calldata,
    bytes32[] calldata,
    bytes32
  ) external {
    if (!isPrimaryTransmitter[msg.sender]) revert UnauthorizedTransmitter();
    uint40 epochAndRound = uint40(uint256(reportContext[1]));
    uint32 pending = s_unlockPendingRoundId;
    if (
      pending != 0 && pending == s_latestAggregatorRoundId
        && epochAndRound == s_latestEpochAndRound
    ) {
      // The report the secondary route just stored, now public.
      s_unlockPendingRoundId = 0;
      emit PrimaryFeedUnlocked(pending);
      return;
    }
    _validate(reportContext, epochAndRound);
    _store(reportContext[0], epochAndRound, _decode(report), false);
  }

  /// @notice The private SVR route (selector 0xba0cb29e).
  function transmitSecondary(
    bytes32[3] calldata reportContext,
    bytes calldata report,
    bytes32[] calldata,
    bytes32[] calldata,
    bytes32
  ) external {
    if (!isSecondaryTransmitter[msg.sender]) revert UnauthorizedTransmitter();
    Report memory r = _decode(report);
    (bool exists, uint32 roundId) = _reportExists(r);
    if (exists) {
      // A catch-up: the report is stored already (possibly in an older round).
      s_latestSecondaryRoundId = roundId;
      emit SecondaryRoundIdUpdated(roundId);
      return;
    }
    uint40 epochAndRound = uint40(uint256(reportContext[1]));
    _validate(reportContext, epochAndRound);
    _store(reportContext[0], epochAndRound, r, true);
  }

  function _validate(bytes32[3] calldata reportContext, uint40 epochAndRound) internal view {
    if (epochAndRound < s_latestEpochAndRound) revert StaleReport();
    if (reportContext[0] != s_configDigest) revert ConfigDigestMismatch();
  }

  function _decode(bytes calldata report) internal pure returns (Report memory r) {
    bytes32 rawObservers;
    (r.observationsTimestamp, rawObservers, r.observations, r.juelsPerFeeCoin) =
      abi.decode(report, (uint32, bytes32, int192[], int192));
    uint256 n = r.observations.length;
    if (n == 0 || n > 31) revert BadObservations();
    for (uint256 i = 1; i < n; i++) {
      if (r.observations[i - 1] > r.observations[i]) revert BadObservations();
    }
    r.observers = new bytes(n);
    for (uint256 i = 0; i < n; i++) r.observers[i] = rawObservers[i];
  }

  /// Whether the report is stored already, looking back at most maxSyncIterations rounds.
  function _reportExists(Report memory r) internal view returns (bool, uint32) {
    int192 median = r.observations[r.observations.length / 2];
    uint32 round = s_latestAggregatorRoundId;
    for (uint32 i = 0; i < s_maxSyncIterations && round > 0; i++) {
      Transmission memory t = s_transmissions[round];
      if (t.observationsTimestamp < r.observationsTimestamp) return (false, 0);
      if (t.observationsTimestamp == r.observationsTimestamp && t.answer == median) {
        return (true, round);
      }
      round--;
    }
    return (false, 0);
  }

  function _store(bytes32 configDigest, uint40 epochAndRound, Report memory r, bool secondary)
    internal
  {
    int192 median = r.observations[r.observations.length / 2];
    uint32 roundId = s_latestAggregatorRoundId + 1;
    s_latestAggregatorRoundId = roundId;
    s_latestEpochAndRound = epochAndRound;
    s_transmissions[roundId] = Transmission(median, r.observationsTimestamp, uint32(block.timestamp));
    if (secondary) {
      s_latestSecondaryRoundId = roundId;
      s_unlockPendingRoundId = roundId;
      emit SecondaryRoundIdUpdated(roundId);
    } else {
      s_unlockPendingRoundId = 0;
    }
    emit NewTransmission(
      roundId,
      median,
      msg.sender,
      r.observationsTimestamp,
      r.observations,
      r.observers,
      r.juelsPerFeeCoin,
      configDigest,
      epochAndRound
    );
    emit NewRound(roundId, address(0), r.observationsTimestamp);
    emit AnswerUpdated(median, roundId, block.timestamp);
  }

  // --- the read side (AggregatorV3Interface / AggregatorInterface) ------------------------

  /// The round this caller sees as the latest.
  function _latestRound() internal view returns (uint32) {
    uint32 latest = s_latestAggregatorRoundId;
    uint32 secondary = s_latestSecondaryRoundId;
    if (isSecondaryProxy[msg.sender]) {
      if (uint256(s_transmissions[secondary].recordedTimestamp) + s_cutoffTime >= block.timestamp) {
        return secondary;
      }
      return _syncPrimaryRound(latest, secondary);
    }
    if (latest == secondary && latest > 0) {
      if (s_transmissions[latest].recordedTimestamp == block.timestamp) return latest - 1;
    }
    return latest;
  }

  /// After the cutoff: the freshest round that is the secondary one or older than the cutoff.
  function _syncPrimaryRound(uint32 latest, uint32 secondary) internal view returns (uint32) {
    uint32 round = latest;
    for (uint32 i = 0; i < s_maxSyncIterations && round > 0; i++) {
      if (uint256(s_transmissions[round].recordedTimestamp) + s_cutoffTime < block.timestamp) {
        return round;
      }
      if (round == secondary) return round;
      round--;
    }
    return secondary;
  }

  function latestAnswer() external view returns (int256) {
    return s_transmissions[_latestRound()].answer;
  }

  function latestTimestamp() external view returns (uint256) {
    return s_transmissions[_latestRound()].recordedTimestamp;
  }

  function latestRound() external view returns (uint256) {
    return _latestRound();
  }

  function getAnswer(uint256 roundId) external view returns (int256) {
    if (roundId > _latestRound()) return 0;
    return s_transmissions[uint32(roundId)].answer;
  }

  function getTimestamp(uint256 roundId) external view returns (uint256) {
    if (roundId > _latestRound()) return 0;
    return s_transmissions[uint32(roundId)].recordedTimestamp;
  }

  function getRoundData(uint80 roundId)
    external
    view
    returns (uint80, int256, uint256, uint256, uint80)
  {
    if (roundId > _latestRound()) return (0, 0, 0, 0, 0);
    Transmission memory t = s_transmissions[uint32(roundId)];
    return (roundId, t.answer, t.observationsTimestamp, t.recordedTimestamp, roundId);
  }

  function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
    uint32 roundId = _latestRound();
    Transmission memory t = s_transmissions[roundId];
    return (roundId, t.answer, t.observationsTimestamp, t.recordedTimestamp, roundId);
  }
}
