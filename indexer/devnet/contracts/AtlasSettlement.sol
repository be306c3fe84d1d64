// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

interface IERC20Like {
  function balanceOf(address) external view returns (uint256);
  function transfer(address, uint256) external returns (bool);
}

/// @title AtlasSettlement (devnet)
/// @notice A stand-in for FastLane Atlas as used by Chainlink SVR on Base and Arbitrum: one
/// transaction (a "metacall") lands the secondary-route price updates and then lets solvers,
/// in bid order, try their liquidation. The first solver that pays its bid wins; the bid is
/// forwarded to the recipient of the metacall's DAppControl. Like Atlas, one settlement serves
/// several DAppControls (Aave's SVR one and other protocols'). Every attempt emits
/// SolverTxResult with the same signature and indexed fields as Atlas.
contract AtlasSettlement {
  struct OracleUpdate {
    address oracle; // the aggregator to update
    bytes data; // call data for it (its transmitSecondary)
  }

  struct SolverOperation {
    address from; // the solver's EOA
    address solver; // the solver contract that runs the liquidation and pays the bid
    address bidToken; // address(0) = native coin
    uint256 bidAmount;
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

  /// Result bits for a failed attempt (as Atlas reports a solver outcome bitmap).
  uint256 internal constant SOLVER_REVERTED = 1 << 13;
  uint256 internal constant BID_NOT_PAID = 1 << 14;

  /// Where each DAppControl's winning bids go.
  mapping(address => address) public recipientOf;

  constructor(address[] memory controls, address[] memory recipients) {
    require(controls.length == recipients.length, "one recipient per control");
    for (uint256 i = 0; i < controls.length; i++) recipientOf[controls[i]] = recipients[i];
  }

  receive() external payable {}

  /// @param control the DAppControl the metacall runs for
  /// @param updates the secondary-route price updates, landed in order before any solver
  /// @param solverOps solver attempts, highest bid first
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
    for (uint256 i = 0; i < solverOps.length && !solverSuccessful; i++) {
      solverSuccessful = _attempt(control, recipient, solverOps[i]);
    }
    emit MetacallResult(msg.sender, tx.origin, solverSuccessful, 0, 0);
  }

  function _attempt(address control, address recipient, SolverOperation calldata op)
    internal
    returns (bool success)
  {
    uint256 balanceBefore = _balance(op.bidToken);
    (bool ok, ) = op.solver.call(op.data);
    uint256 result = 0;
    if (!ok) {
      result = SOLVER_REVERTED;
    } else if (_balance(op.bidToken) < balanceBefore + op.bidAmount) {
      result = BID_NOT_PAID;
    } else {
      success = true;
      _pay(recipient, op.bidToken, op.bidAmount);
    }
    emit SolverTxResult(
      op.solver, op.from, control, op.bidToken, op.bidAmount, true, success, result
    );
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
