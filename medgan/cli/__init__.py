"""medgan.cli."""
