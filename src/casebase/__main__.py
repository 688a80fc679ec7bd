"""``python -m casebase``: the same command as ``casebase``."""

from .cli import cli

cli()
