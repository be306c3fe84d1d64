// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

interface IERC20Min {
  function allowance(address, address) external view returns (uint256);
  function approve(address, uint256) external returns (bool);
  function transfer(address, uint256) external returns (bool);
}

interface IPoolLiquidation {
  function liquidationCall(
    address collateralAsset,
    address debtAsset,
    address user,
    uint256 debtToCover,
    bool receiveAToken
  ) external;
}

/// @title SvrSearcher (devnet)
/// @notice A searcher's / solver's liquidation contract. It holds the debt tokens it repays,
/// calls Pool.liquidationCall for each target in the target's market (so it is the `liquidator`
/// of the event) and pays its bid: to block.coinbase when back-running a price update through
/// MEV-Share (Ethereum), or to the Atlas settlement that called it (Base, Arbitrum).
contract SvrSearcher {
  struct Target {
    address pool;
    address collateralAsset;
    address debtAsset;
    address user;
    uint256 debtToCover;
    bool receiveAToken;
  }

  receive() external payable {}

  /// @param payTo who receives the bid; address(0) means block.coinbase
  function liquidate(
    Target[] calldata targets,
    address bidToken,
    uint256 bid,
    address payTo
  ) external payable {
    for (uint256 i = 0; i < targets.length; i++) {
      Target calldata t = targets[i];
      if (IERC20Min(t.debtAsset).allowance(address(this), t.pool) < t.debtToCover) {
        IERC20Min(t.debtAsset).approve(t.pool, type(uint256).max);
      }
      IPoolLiquidation(t.pool).liquidationCall(
        t.collateralAsset, t.debtAsset, t.user, t.debtToCover, t.receiveAToken
      );
    }
    address to = payTo == address(0) ? block.coinbase : payTo;
    if (bidToken == address(0)) {
      (bool ok, ) = to.call{value: bid}("");
      require(ok, "bid payment failed");
    } else {
      require(IERC20Min(bidToken).transfer(to, bid), "bid payment failed");
    }
  }
}
