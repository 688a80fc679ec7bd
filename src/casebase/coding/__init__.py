"""Coding: the codebook and its rules, the coders' decision files, the classifier trained
on them (``classifier``, saved by ``model_files``, retrained when needed by ``training``,
run over many excerpts by ``scoring``), the final codes with their provenance
(``final_codes``), and the quality figures (``out_of_fold``, ``evaluation``, ``agreement``)."""
