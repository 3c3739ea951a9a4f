"""medgan: differentially private synthetic 3D medical images, from ingest to reviewed export."""

from medgan.errors import ConfigError, InputError, LeakError, MedganError, PrivacyError, ReviewError

__version__ = "0.1.0"

__all__ = ["__version__", "MedganError", "InputError", "ConfigError", "PrivacyError", "ReviewError", "LeakError"]
