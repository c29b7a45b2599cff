"""Data doctor: pure checks over examples, and :func:`inspect_files` that runs them all (``nerforge inspect``).

Finding kinds, by module:

* ``tags``: ``i-start`` (a span opens with ``I-``; info in IOB1/IO), ``empty-tag``, ``invalid-tag``, ``corrupt-tag``
  (``I-blockchainO``, ``I-emergingB-emerging``), ``rare-type`` (a type seen once where others are frequent),
  ``type-in-one-file``.
* ``tokens``: ``whitespace-token``, ``control-char`` (U+001A), ``zero-width-char`` (U+200B), ``odd-char``
  (private use), ``padded-token`` (leading U+202F or spaces), ``space-in-token``.
* ``lines``: ``extra-field`` (a column-file line with an empty extra field, GermEval's 5-field line).
* ``overlap``: ``duplicate-sentence``, ``conflicting-duplicate``, ``overlap`` (a sentence also in an earlier file),
  ``inconsistent-label``.
* ``common``: ``docstart-in-sentence``.
* :mod:`nerforge.data.checks.subwords`: ``too-long`` (lost to truncation), ``no-subword``.

Readers add their own findings (BOM, CRLF, missing tags, ...), which the report includes as they are.
"""

from nerforge.data.checks.common import FindingLog, decode_spans, split_docstart
from nerforge.data.checks.lines import check_extra_fields
from nerforge.data.checks.overlap import Overlap, check_duplicates, check_label_consistency, check_overlap
from nerforge.data.checks.report import FileReport, InspectReport, inspect_corpora, inspect_files
from nerforge.data.checks.tags import (
    check_corrupt_types,
    check_i_starts,
    check_tag_shapes,
    check_types_across_files,
    corruption_reason,
)
from nerforge.data.checks.tokens import check_tokens, token_problems

__all__ = [
    "FileReport",
    "FindingLog",
    "InspectReport",
    "Overlap",
    "check_corrupt_types",
    "check_duplicates",
    "check_extra_fields",
    "check_i_starts",
    "check_label_consistency",
    "check_overlap",
    "check_tag_shapes",
    "check_tokens",
    "check_types_across_files",
    "corruption_reason",
    "decode_spans",
    "inspect_corpora",
    "inspect_files",
    "split_docstart",
    "token_problems",
]
