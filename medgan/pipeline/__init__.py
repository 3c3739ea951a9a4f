"""medgan.pipeline."""
