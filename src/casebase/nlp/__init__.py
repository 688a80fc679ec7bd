"""NLP: the Danish pipeline (``danish``, named without importing spaCy by ``identity``),
the analysis of excerpts into lemmas and rule hits (``analysis``) through a content-keyed
cache (``analysis_cache``), big batches in forked worker processes (``workers``)."""
