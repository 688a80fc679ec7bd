"""Publish: the Datasette server (``serving``, plugin in ``web``), what the coding server
reads and writes in the served database (``coding_db``), coder accounts (``coders``) and
the exports for other tools (``refiqda``, ``spreadsheet``)."""
