"""Options shared by every reader. Each field is a CLI flag of ``convert``, ``inspect`` and ``train``."""

from __future__ import annotations

from dataclasses import dataclass, field

FORMATS = ("conll", "jsonl", "json", "spacy", "doccano", "labelstudio", "csv")


@dataclass(frozen=True)
class ReadOptions:
    """How to read one file. ``None`` means auto-detect.

    Attributes:
        format: one of :data:`FORMATS`, or ``None`` to detect from name and content.
        token_column: 0-based column of the token in column files and token-per-row CSV.
        tag_column: 0-based column of the tag (negative counts from the end; default the last).
        separator: column separator in column files (``None``: TAB when the file has tabs, else any whitespace).
        tokens_field: JSON field holding the tokens.
        tags_field: JSON field holding the tags (string tags or integer ids).
        label_names: names of integer tag ids, in id order (``O,B-PER,I-PER`` or ``O,PER_B,...``).
        labels_file: a sidecar file with those names (JSON list, JSON ``{id: name}``, or one name per line).
        entity_type: type given to bare ``B``/``I`` tags that have none.
        scheme: the tag scheme of the source, overriding detection.
        label_map: rename, merge or drop entity types: ``{"AI": "TECH", "*": "TECH", "MISC": None}`` (glob keys;
            ``None`` drops the type, its tokens become ``O``).
        strip_token_prefix: remove this prefix from every token (WikiANN's ``de:``).
        sentence_columns: CSV columns whose values together identify a sentence (``doc_idx,sent_idx``).
        doc_column: CSV column that identifies a document.
        missing_tag: what to do with a token line that has no tag: ``"o"`` tags it ``O`` and reports a finding,
            ``"error"`` raises.
    """

    format: str | None = None
    token_column: int = 0
    tag_column: int = -1
    separator: str | None = None
    tokens_field: str = "tokens"
    tags_field: str | None = None
    label_names: tuple[str, ...] | None = None
    labels_file: str | None = None
    entity_type: str | None = None
    scheme: str | None = None
    label_map: dict[str, str | None] | None = field(default=None, hash=False, compare=False)
    strip_token_prefix: str | None = None
    sentence_columns: tuple[str, ...] | None = None
    doc_column: str | None = None
    missing_tag: str = "o"
