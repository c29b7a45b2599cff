"""The word tokenizer used for character-offset formats (spaCy/tecoholic JSON, doccano, Label Studio).

It is deterministic, has no model and no dependency, and records where each token lies in the text:

* a **word** is a run of letters, digits or ``_`` (``\\w``), joined across single inner hyphens and apostrophes:
  ``plug-ins``, ``don't``, ``api's``, ``e-commerce`` are one token each;
* every other non-space character is a token of its own: ``c++`` gives ``c``, ``+``, ``+``; ``django/flask.``
  gives ``django``, ``/``, ``flask``, ``.``;
* whitespace (any Unicode space, including ``\\r`` and no-break spaces) separates tokens and is never part of one.

Offsets are half-open character ranges into the text, so ``text[start:end] == token`` always holds.

EXAMPLE:
    >>> tokenize("Python/Django dev, e-commerce.")
    [('Python', 0, 6), ('/', 6, 7), ('Django', 7, 13), ('dev', 14, 17), (',', 17, 18), ('e-commerce', 19, 29), ('.', 29, 30)]
"""

from __future__ import annotations

import re

TOKEN_PATTERN = r"\w+(?:['’\-]\w+)*|[^\w\s]"
_TOKEN_RE = re.compile(TOKEN_PATTERN)


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """Split ``text`` into ``(token, start, end)`` triples (see the module docstring)."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]
