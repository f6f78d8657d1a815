"""``python -m scimgate`` = the ``scimgate`` command."""

from scimgate.cli.main import run

run()
