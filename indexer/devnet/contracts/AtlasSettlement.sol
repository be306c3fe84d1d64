// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

interface IERC20Like {
  function balanceOf(address) external view returns (uint256);
  function transfer(address, uint256) external returns (bool);
}

/// @title AtlasSettlement (devnet)
/// @notice A stand-in for FastLane Atlas as used by Chainlink SVR on Base and Arbitrum: one
/// transaction (a "metacall") lands the secondary-route price update and then lets solvers,
/// in bid order, try their liquidation. The first solver that pays its bid wins; the bid is
/// forwarded to the SVR recipient. Every attempt emits SolverTxResult with the same signature
/// and indexed fields as Atlas, with dAppControl set to the configured SVR DAppControl.
contract AtlasSettlement {
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

  address public immutable dAppControl;
  address public immutable svrRecipient;

  constructor(address dAppControl_, address svrRecipient_) {
    dAppControl = dAppControl_;
    svrRecipient = svrRecipient_;
  }

  receive() external payable {}

  /// @param oracle the SVR aggregator to update
  /// @param oracleUpdate call data for the aggregator (its transmitSecondary)
  /// @param solverOps solver attempts, highest bid first
  function metacall(address oracle, bytes calldata oracleUpdate, SolverOperation[] calldata solverOps)
    external
    returns (bool solverSuccessful)
  {
    (bool ok, bytes memory reason) = oracle.call(oracleUpdate);
    if (!ok) {
      assembly {
        revert(add(reason, 32), mload(reason))
      }
    }
    for (uint256 i = 0; i < solverOps.length && !solverSuccessful; i++) {
      solverSuccessful = _attempt(solverOps[i]);
    }
    emit MetacallResult(msg.sender, tx.origin, solverSuccessful, 0, 0);
  }

  function _attempt(SolverOperation calldata op) internal returns (bool success) {
    uint256 balanceBefore = _balance(op.bidToken);
    (bool ok, ) = op.solver.call(op.data);
    uint256 result = 0;
    if (!ok) {
      result = SOLVER_REVERTED;
    } else if (_balance(op.bidToken) < balanceBefore + op.bidAmount) {
      result = BID_NOT_PAID;
    } else {
      success = true;
      _pay(op.bidToken, op.bidAmount);
    }
    emit SolverTxResult(
      op.solver, op.from, dAppControl, op.bidToken, op.bidAmount, true, success, result
    );
  }

  function _balance(address token) internal view returns (uint256) {
    return token == address(0) ? address(this).balance : IERC20Like(token).balanceOf(address(this));
  }

  function _pay(address token, uint256 amount) internal {
    if (token == address(0)) {
      (bool ok, ) = svrRecipient.call{value: amount}("");
      require(ok, "recipient refused the bid");
    } else {
      require(IERC20Like(token).transfer(svrRecipient, amount), "bid transfer failed");
    }
  }
}
