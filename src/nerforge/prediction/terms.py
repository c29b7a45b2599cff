"""Round zero, before any model: pre-annotate texts from a list of terms (``nerforge annotate --terms``).

Users often start from a list of skills or technologies and no annotations. A :class:`TermTagger` finds the terms
in texts the way an annotator would mark them, so the first round of annotation corrects suggestions instead of
starting from a blank page:

* **words, not substrings**: texts and terms are cut into words by the default word tokenizer (the one models use,
  :mod:`nerforge.prediction.words`), so ``Go`` does not match inside ``Google`` and ``C++`` stays one word;
* **case- and plural-tolerant**: words are compared case-folded and singular (:func:`singular`), so the term
  ``API`` finds ``APIs`` and ``apis``, and ``data pipeline`` finds ``Data Pipelines``;
* **longest match first**, left to right, never overlapping: ``machine learning engineer`` wins over ``machine
  learning`` where both are listed.

Term lists (:func:`load_terms`):

* ``.txt``: one term per line (blank lines and lines starting with ``#`` skipped), all of one type (``label``);
* ``.csv`` with a ``term`` column and a ``label`` (or ``type``) column: one type per term;
* any other ``.csv``: one column per type, the header names the types, each cell below a term.

A term listed twice under two types keeps the first and the conflict is reported (:attr:`TermList.conflicts`).
Written here rather than taken from a library: spaCy's ``PhraseMatcher`` matches its own tokens (not the words our
models tag) and needs spaCy; flashtext and pyahocorasick match characters, with no notion of our words or plurals.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nerforge.errors import DataFormatError, UsageError
from nerforge.prediction.words import tokenize_words
from nerforge.types import Entity

TERM_COLUMNS = ("term",)
LABEL_COLUMNS = ("label", "type")
_SIBILANT_ENDS = ("s", "x", "z", "ch", "sh")


def singular(word: str) -> str:
    """``word`` case-folded and made singular by English's regular rules (``APIs`` → ``api``, ``Companies`` →
    ``company``, ``Boxes`` → ``box``); short words and words in ``-ss``/``-us``/``-is`` are left as they are, but
    an acronym's ``s`` always goes (``GPUs``, ``SDKs``).

    >>> [singular(w) for w in ["APIs", "GPUs", "Companies", "boxes", "class", "status", "Go", "analysis"]]
    ['api', 'gpu', 'company', 'box', 'class', 'status', 'go', 'analysis']
    """
    if len(word) >= 3 and word.endswith("s") and word[:-1].isupper():
        return word[:-1].casefold()
    w = word.casefold()
    if len(w) <= 3 or not w.endswith("s") or w.endswith(("ss", "us", "is")):
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("es") and w[:-2].endswith(_SIBILANT_ENDS):
        return w[:-2]
    return w[:-1]


def term_key(words: Sequence[str]) -> tuple[str, ...]:
    """The form under which a sequence of words is compared (:func:`singular` of each)."""
    return tuple(singular(w) for w in words)


@dataclass
class TermList:
    """Terms by their compared form: ``key -> (type, the term as listed)``.

    Attributes:
        terms: the terms.
        conflicts: terms listed under a second type (the first type is kept), as ``(term, kept, dropped)``.
        source: where the terms came from (for messages and the version string).
    """

    terms: dict[tuple[str, ...], tuple[str, str]] = field(default_factory=dict)
    conflicts: list[tuple[str, str, str]] = field(default_factory=list)
    source: str = ""

    def add(self, term: str, label: str) -> None:
        words = [w.text for w in tokenize_words(term)]
        if not words:
            return
        key = term_key(words)
        if key in self.terms and self.terms[key][0] != label:
            self.conflicts.append((term, self.terms[key][0], label))
            return
        self.terms.setdefault(key, (label, term))

    @property
    def types(self) -> list[str]:
        return sorted({label for label, _ in self.terms.values()})

    @property
    def longest(self) -> int:
        return max((len(k) for k in self.terms), default=0)


def load_terms(path: str | Path, label: str | None = None) -> TermList:
    """The terms of ``path`` (see the module docstring for the layouts).

    Raises:
        UsageError: no such file, or a ``.txt`` list without ``label``.
        DataFormatError: a file that is not UTF-8, a row without a term or type, or a list without terms.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such term list")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    terms = TermList(source=path.name)
    if path.suffix.lower() == ".csv":
        _csv_terms(text, path, terms, label)
    else:
        if not label:
            raise UsageError(
                f"{path}: a plain list of terms needs their type: give --label TYPE (or use a CSV with "
                "a term and a label column, or one column per type)"
            )
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                terms.add(line.strip(), label)
    if not terms.terms:
        raise DataFormatError(path, None, "no terms found", "one term per line, or a CSV of terms")
    return terms


def _csv_terms(text: str, path: Path, terms: TermList, label: str | None) -> None:
    rows = list(csv.reader(io.StringIO(text, newline="")))  # the CSV parser sees quoted line ends
    if not rows:
        return
    header = [h.strip() for h in rows[0]]
    folded = [h.casefold() for h in header]
    term_col = next((folded.index(c) for c in TERM_COLUMNS if c in folded), None)
    label_col = next((folded.index(c) for c in LABEL_COLUMNS if c in folded), None)
    if term_col is not None and (label_col is not None or label):
        for n, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            term = row[term_col].strip() if term_col < len(row) else ""
            kind = (row[label_col].strip() if label_col is not None and label_col < len(row) else "") or label or ""
            if not term or not kind:
                raise DataFormatError(
                    path, n, "a row without a term or a type", f"a value in the columns {header[term_col]!r} and a type"
                )
            terms.add(term, kind)
        return
    if any(not h for h in header):
        raise DataFormatError(
            path, 1, "an empty column name", "a header naming each column's type, or the columns term and label"
        )
    for row in rows[1:]:  # one column per type
        for kind, cell in zip(header, row, strict=False):
            if cell.strip():
                terms.add(cell.strip(), kind)


class TermTagger:
    """Finds the terms of a :class:`TermList` in texts (see the module docstring); entities score 1.0.

    It tags texts like a model (:meth:`iter_predict`), so ``nerforge annotate`` writes every format ``nerforge
    predict`` writes."""

    def __init__(self, terms: TermList) -> None:
        self.terms = terms
        starts: dict[str, set[int]] = {}
        for key in terms.terms:
            starts.setdefault(key[0], set()).add(len(key))
        # first word -> the lengths of the terms that start with it, longest first
        self._first = {word: sorted(lengths, reverse=True) for word, lengths in starts.items()}

    @property
    def model_version(self) -> str:
        """``nerforge-terms-`` and a digest of the terms and their types: another list, another version."""
        digest = hashlib.sha256()
        for key, (label, _) in sorted(self.terms.terms.items()):
            digest.update(("\x1f".join(key) + "\x1e" + label + "\n").encode())
        return f"nerforge-terms-{digest.hexdigest()[:12]}"

    def find(self, text: str) -> list[Entity]:
        """The terms in ``text``, longest first, left to right, not overlapping; offsets in code points."""
        words = tokenize_words(text)
        keys = [singular(w.text) for w in words]
        out: list[Entity] = []
        i = 0
        while i < len(words):
            for length in self._first.get(keys[i], ()):
                found = self.terms.terms.get(tuple(keys[i : i + length])) if i + length <= len(words) else None
                if found is not None:
                    start, end = words[i].start, words[i + length - 1].end
                    out.append(Entity(text[start:end], found[0], start, end, 1.0))
                    i += length
                    break
            else:
                i += 1
        return out

    def iter_predict(self, texts: Iterable[str], *, total: int | None = None) -> Iterator[list[Entity]]:
        """The terms of each text, in order, read lazily."""
        for text in texts:
            yield self.find(text)
