"""``python -m casebase``: the same command as ``casebase``."""

from casebase.cli import cli

cli()
