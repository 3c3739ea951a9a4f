"""medgan.data."""
