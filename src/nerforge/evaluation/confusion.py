"""Token-level confusion between entity types: ``B-X`` and ``I-X`` count as ``X``, ``O`` stays ``O``.

Rows are gold labels and columns predicted ones, in the order of :attr:`ConfusionMatrix.labels` (``O`` first, then
the types sorted, unless an order is given).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from nerforge.data.schemes import OUTSIDE, parse_tag
from nerforge.errors import UsageError
from nerforge.evaluation.metrics import TagSequences, check_aligned


@dataclass(frozen=True, eq=False)
class ConfusionMatrix:
    """Token counts, ``matrix[i, j]`` = tokens of gold label ``labels[i]`` predicted as ``labels[j]``.

    The array is read-only.
    """

    labels: tuple[str, ...]
    matrix: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.matrix.shape != (n, n):
            raise UsageError(f"confusion matrix of shape {self.matrix.shape} for {n} labels; expected ({n}, {n})")

    def index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise UsageError(f"label {label!r} is not in the confusion matrix ({', '.join(self.labels)})") from None

    def count(self, gold: str, pred: str) -> int:
        """Tokens of gold label ``gold`` predicted as ``pred``."""
        return int(self.matrix[self.index(gold), self.index(pred)])

    def normalized(self) -> np.ndarray:
        """Each row divided by its total (rows with no tokens stay zero)."""
        return normalize_rows(self.matrix)

    @property
    def total(self) -> int:
        return int(self.matrix.sum())

    def folded(self, keep: int, other: str = "other types") -> ConfusionMatrix:
        """This matrix with ``O`` and the ``keep`` labels of most gold tokens (then most predicted), the rest summed
        into one ``other`` row and column: a figure of hundreds of types stays readable (and drawable)."""
        types = [k for k, label in enumerate(self.labels) if label != OUTSIDE]
        if len(types) <= keep:
            return self
        rows, cols = self.matrix.sum(axis=1), self.matrix.sum(axis=0)
        kept = sorted(sorted(types, key=lambda k: (-rows[k], -cols[k], self.labels[k]))[:keep])
        groups = [[k] for k in range(len(self.labels)) if self.labels[k] == OUTSIDE or k in kept]
        groups.append([k for k in types if k not in kept])
        matrix = np.array([[self.matrix[np.ix_(g, h)].sum() for h in groups] for g in groups], dtype=self.matrix.dtype)
        matrix.flags.writeable = False
        labels = tuple(self.labels[g[0]] for g in groups[:-1]) + (other,)
        return ConfusionMatrix(labels, matrix)

    def to_dict(self) -> dict[str, object]:
        return {"labels": list(self.labels), "matrix": self.matrix.tolist(), "rows": "gold", "columns": "predicted"}


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1; all-zero rows stay zero."""
    m = np.asarray(matrix, dtype=np.float64)
    sums = m.sum(axis=1, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums != 0)


def tag_to_type(tag: str) -> str:
    """``B-X``/``I-X`` (or ``X_B``) to ``X``; ``O`` to ``O``."""
    parsed = parse_tag(tag)
    return parsed.type if parsed.type is not None else OUTSIDE


def token_confusion(gold: TagSequences, pred: TagSequences, *, labels: Iterable[str] | None = None) -> ConfusionMatrix:
    """Count (gold type, predicted type) over all tokens.

    Args:
        gold: tags per sentence.
        pred: predicted tags, aligned with ``gold``.
        labels: the row/column order (types and ``O``); by default ``O`` then every type seen, sorted. Labels
            given but never seen get zero rows; seen labels missing from ``labels`` are an error.

    Raises:
        LengthMismatchError: sentences that do not line up.
        UsageError: a label seen in the tags is missing from ``labels``.
    """
    check_aligned(gold, pred)
    cache: dict[str, str] = {}

    def to_type(tag: str) -> str:
        t = cache.get(tag)
        if t is None:
            t = cache[tag] = tag_to_type(tag)
        return t

    pairs = [(to_type(g), to_type(p)) for gs, ps in zip(gold, pred, strict=True) for g, p in zip(gs, ps, strict=True)]
    seen = {t for pair in pairs for t in pair}
    if labels is None:
        order = (OUTSIDE, *sorted(seen - {OUTSIDE}))
    else:
        order = tuple(dict.fromkeys(labels))
        missing = sorted(seen - set(order))
        if missing:
            raise UsageError(f"labels {missing} occur in the tags but not in the label order {list(order)}")
    pos = {label: i for i, label in enumerate(order)}
    matrix = np.zeros((len(order), len(order)), dtype=np.int64)
    if pairs:
        rows = np.fromiter((pos[g] for g, _ in pairs), dtype=np.int64, count=len(pairs))
        cols = np.fromiter((pos[p] for _, p in pairs), dtype=np.int64, count=len(pairs))
        np.add.at(matrix, (rows, cols), 1)
    matrix.setflags(write=False)
    return ConfusionMatrix(order, matrix)
