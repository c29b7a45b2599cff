"""Readers for every supported input format. See :func:`read_corpus` (implemented in ``registry``)."""
