"""medgan.privacy."""
