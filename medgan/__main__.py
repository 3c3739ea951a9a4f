"""Allow ``python -m medgan``."""

from medgan.cli.main import main

main()
