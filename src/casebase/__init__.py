"""casebase: a qualitative coding and case knowledge base for Danish texts."""

__version__ = "0.1.0"
