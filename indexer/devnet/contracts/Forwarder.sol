// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Forwarder (devnet)
/// @notice The node operators' forwarder that carries SVR (secondary-route) reports on
/// Ethereum: forward(address,bytes) (selector 0x6fadcf72), callable by its operators only.
contract Forwarder {
  mapping(address => bool) public isOperator;

  constructor(address[] memory operators) {
    for (uint256 i = 0; i < operators.length; i++) isOperator[operators[i]] = true;
  }

  function forward(address target, bytes calldata data) external {
    require(isOperator[msg.sender], "not an operator");
    (bool ok, bytes memory reason) = target.call(data);
    if (!ok) {
      assembly {
        revert(add(reason, 32), mload(reason))
      }
    }
  }
}
