// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

interface IERC20Like {
  function balanceOf(address) external view returns (uint256);
  function transfer(address, uint256) external returns (bool);
}

/// @title AtlasSettlement (devnet)
/// @notice A stand-in for FastLane Atlas as Chainlink SVR uses it on Base and Arbitrum: one
/// transaction (a "metacall") lands the secondary-route price updates (the user operation), then
/// runs the solver operations in bid order. As in Atlas:
///  - every solver operation is logged by SolverTxResult (same signature and indexed fields),
///    losing ones too, so the auction's depth shows;
///  - a bid rejected before execution has `executed` false (InsufficientEscrow 1<<13 for a
///    solver without escrow, GasPriceBelowUsers 1<<14 for a max fee below the transaction's);
///  - an executed solver that reverts is SolverOpReverted (1<<17), one that leaves the
///    execution environment less than its bid is BidNotPaid (1<<19); either way its effects
///    (liquidations, payments) are undone;
///  - a winner's bidAmount is the NET amount the execution environment received, which can
///    exceed the declared bid; it is forwarded to the DAppControl's recipient;
///  - a DAppControl may let several solvers succeed (multipleSuccessfulSolvers); MetacallResult
///    then says solverSuccessful = false, so it is never to be relied on.
/// The settlement contract stands for the execution environment, and escrow for an allow-list
/// of bonded solver accounts. One settlement serves several DAppControls.
contract AtlasSettlement {
  struct OracleUpdate {
    address oracle; // the aggregator to update
    bytes data; // call data for it (its transmitSecondary)
  }

  struct SolverOperation {
    address from; // the solver's EOA
    address solver; // the solver contract that runs the liquidation and pays the bid
    address bidToken; // address(0) = native coin
    uint256 bidAmount; // the declared bid
    uint256 maxFeePerGas;
    bytes data; // call data for the solver contract
  }

  event SolverTxResult(
    address indexed solverTo,
    address indexed solverFrom,
    address indexed dAppControl,
    address bidToken,
    uint256 bidAmount,
    bool executed,
    bool success,
    uint256 result
  );
  event MetacallResult(
    address indexed bundler,
    address indexed user,
    bool solverSuccessful,
    uint256 ethPaidToBundler,
    uint256 netGasSurcharge
  );

  error SolverFailed(uint256 result);

  /// SolverOutcome bits, as Atlas numbers them.
  uint256 internal constant INSUFFICIENT_ESCROW = 1 << 13;
  uint256 internal constant GAS_PRICE_BELOW_USERS = 1 << 14;
  uint256 internal constant SOLVER_OP_REVERTED = 1 << 17;
  uint256 internal constant BID_NOT_PAID = 1 << 19;

  /// Where each DAppControl's winning bids go, and whether it lets several solvers win.
  mapping(address => address) public recipientOf;
  mapping(address => bool) public multipleSuccessfulSolvers;
  mapping(address => bool) public bonded;

  constructor(
    address[] memory controls,
    address[] memory recipients,
    bool[] memory multiple,
    address[] memory solvers
  ) {
    require(
      controls.length == recipients.length && controls.length == multiple.length,
      "one recipient per control"
    );
    for (uint256 i = 0; i < controls.length; i++) {
      recipientOf[controls[i]] = recipients[i];
      multipleSuccessfulSolvers[controls[i]] = multiple[i];
    }
    for (uint256 i = 0; i < solvers.length; i++) bonded[solvers[i]] = true;
  }

  receive() external payable {}

  /// @param control the DAppControl the metacall runs for
  /// @param updates the secondary-route price updates, landed in order before any solver
  /// @param solverOps solver operations, highest bid first
  function metacall(
    address control,
    OracleUpdate[] calldata updates,
    SolverOperation[] calldata solverOps
  ) external returns (bool solverSuccessful) {
    address recipient = recipientOf[control];
    require(recipient != address(0), "unknown DAppControl");
    for (uint256 i = 0; i < updates.length; i++) {
      (bool ok, bytes memory reason) = updates[i].oracle.call(updates[i].data);
      if (!ok) {
        assembly {
          revert(add(reason, 32), mload(reason))
        }
      }
    }
    bool multiple = multipleSuccessfulSolvers[control];
    bool won = false;
    for (uint256 i = 0; i < solverOps.length && (multiple || !won); i++) {
      if (_attempt(control, recipient, solverOps[i])) won = true;
    }
    solverSuccessful = won && !multiple;
    emit MetacallResult(msg.sender, tx.origin, solverSuccessful, 0, 0);
  }

  function _attempt(address control, address recipient, SolverOperation calldata op)
    internal
    returns (bool)
  {
    uint256 result = 0;
    if (!bonded[op.from]) result |= INSUFFICIENT_ESCROW;
    if (op.maxFeePerGas < tx.gasprice) result |= GAS_PRICE_BELOW_USERS;
    if (result != 0) {
      emit SolverTxResult(
        op.solver, op.from, control, op.bidToken, op.bidAmount, false, false, result
      );
      return false;
    }
    try this.solverCall(op) returns (uint256 net) {
      _pay(recipient, op.bidToken, net);
      emit SolverTxResult(op.solver, op.from, control, op.bidToken, net, true, true, 0);
      return true;
    } catch (bytes memory reason) {
      result = SOLVER_OP_REVERTED;
      if (reason.length == 36 && bytes4(reason) == SolverFailed.selector) {
        assembly {
          result := mload(add(reason, 36))
        }
      }
      emit SolverTxResult(
        op.solver, op.from, control, op.bidToken, op.bidAmount, true, false, result
      );
      return false;
    }
  }

  /// @notice Runs one solver operation; reverts (undoing it) unless the bid was paid. Only
  /// the settlement itself calls it.
  function solverCall(SolverOperation calldata op) external returns (uint256 net) {
    require(msg.sender == address(this), "internal");
    uint256 before = _balance(op.bidToken);
    (bool ok, ) = op.solver.call(op.data);
    if (!ok) revert SolverFailed(SOLVER_OP_REVERTED);
    net = _balance(op.bidToken) - before;
    if (net < op.bidAmount) revert SolverFailed(BID_NOT_PAID);
  }

  function _balance(address token) internal view returns (uint256) {
    return token == address(0) ? address(this).balance : IERC20Like(token).balanceOf(address(this));
  }

  function _pay(address recipient, address token, uint256 amount) internal {
    if (token == address(0)) {
      (bool ok, ) = recipient.call{value: amount}("");
      require(ok, "recipient refused the bid");
    } else {
      require(IERC20Like(token).transfer(recipient, amount), "bid transfer failed");
    }
  }
}
