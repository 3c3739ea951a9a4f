"""medgan.cohort."""
