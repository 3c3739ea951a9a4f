"""medgan.export."""
