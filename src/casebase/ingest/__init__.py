"""Ingest: sources.yaml and the source files read, cleaned and cut into excerpts and cases.

sources (files, survey tables) -> clean (PDF-text repair) -> parsers (one per report
layout) -> segment (excerpts, cases, stable ids); ``reading`` streams a source a batch at
a time for the build."""
