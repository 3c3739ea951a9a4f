"""Logging set-up for the command line.

Library modules only create module loggers; the CLI calls :func:`configure_logging`
once so that library code never decides where messages go.
"""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(verbose: bool = False) -> None:
    """Send medgan's log records to stderr, at INFO (or DEBUG when ``verbose``)."""
    level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    root = logging.getLogger("medgan")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
