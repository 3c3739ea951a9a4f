"""medgan.review."""
