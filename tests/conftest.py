"""Shared pytest settings: keep torch to the machine's cores and make runs repeatable."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
