"""PNG figures of an evaluation: token confusion heatmap, training curves, per-type F1 bars.

Figures are drawn with matplotlib's Agg canvas directly (no pyplot, so no global figure state and no display
needed) and written atomically. Each function returns the path it wrote.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nerforge.evaluation.confusion import ConfusionMatrix
from nerforge.evaluation.metrics import EpochRecord, EvalResult, coerce_epochs
from nerforge.io_utils import atomic_open

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def tight_layout(fig: Figure) -> None:
    """``fig.tight_layout()`` without matplotlib's "Tight layout not applied" warning on stderr (it landed among
    training's log lines); a figure whose layout cannot be tightened is drawn as it is."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()


def _new_figure(**kwargs: Any) -> Figure:
    # matplotlib is imported when a figure is drawn, not when nerforge starts (it costs a quarter of a second)
    from matplotlib.figure import Figure

    return Figure(**kwargs)


logger = logging.getLogger(__name__)

DPI = 100
MAX_TYPES_SHOWN = 30  # types drawn in one figure; the rest are folded (confusion) or left to the tables (F1)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_open(path, "wb") as fh:
        # No "Software" entry: the bytes depend on the data only, not on the matplotlib version string.
        fig.savefig(fh, format="png", dpi=DPI, metadata={"Software": None})
    logger.debug("wrote %s", path)
    return path


def _no_data(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_confusion(cm: ConfusionMatrix, path: str | Path, *, title: str = "Token confusion by entity type") -> Path:
    """Write :func:`confusion_figure` to ``path`` as PNG."""
    return _save(confusion_figure(cm, title=title), path)


def confusion_figure(cm: ConfusionMatrix, *, title: str = "Token confusion by entity type") -> Figure:
    """Heatmap of a token confusion matrix; colour is the row share, each cell is annotated with its count. Past
    :data:`MAX_TYPES_SHOWN` types, the most frequent are shown and the rest folded into one row and column (with
    300 types the full figure was 21,000 pixels square and took minutes to draw; ``metrics.json`` keeps it all)."""
    types = sum(1 for label in cm.labels if label != "O")
    if types > MAX_TYPES_SHOWN:
        cm = cm.folded(MAX_TYPES_SHOWN - 1)
        title = f"{title}: the {MAX_TYPES_SHOWN - 1} most frequent of {types} types"
    n = len(cm.labels)
    side = max(4.0, 0.7 * n + 2.0)
    fig = _new_figure(figsize=(side + 1.0, side))
    ax = fig.add_subplot()
    if n == 0:
        _no_data(ax, "no tokens")
        ax.set_title(title)
        return fig
    shares = cm.normalized()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of gold row")
    ax.set_xticks(range(n), labels=list(cm.labels), rotation=45, ha="right")
    ax.set_yticks(range(n), labels=list(cm.labels))
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    fontsize = max(5.0, 10.0 - 0.2 * n)
    for i in range(n):
        for j in range(n):
            count = int(cm.matrix[i, j])
            colour = "white" if shares[i, j] > 0.5 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=fontsize)
    tight_layout(fig)
    return fig


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _points(records: list[EpochRecord], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in records:
        y = getattr(r, key)
        if y is not None and math.isfinite(y) and r.epoch is not None:
            xs.append(r.epoch)
            ys.append(y)
    return xs, ys


def plot_training_curves(
    epochs: Iterable[EpochRecord | Mapping[str, object]],
    path: str | Path,
    *,
    title: str = "Training",
    losses: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Write :func:`training_figure` to ``path`` as PNG."""
    return _save(training_figure(epochs, title=title, losses=losses), path)


def training_figure(
    epochs: Iterable[EpochRecord | Mapping[str, object]],
    *,
    title: str = "Training",
    losses: Sequence[Mapping[str, Any]] | None = None,
) -> Figure:
    """Two panels: the loss (every logged train loss against the fractional epoch, with dotted marks at the epoch
    ends, plus train and dev loss per epoch) and dev F1 per epoch. Missing or non-finite values are skipped."""
    records = coerce_epochs(epochs)
    fig = _new_figure(figsize=(10.0, 4.0))
    loss_ax, f1_ax = fig.subplots(1, 2)
    drawn = 0
    steps = [
        (float(p["epoch"]), float(p["loss"]))
        for p in losses or ()
        if _finite(p.get("loss")) and _finite(p.get("epoch"))
    ]
    if steps:
        loss_ax.plot(
            [x for x, _ in steps],
            [y for _, y in steps],
            "-",
            color="tab:blue",
            alpha=0.45,
            lw=1,
            label="train loss (logged)",
        )
        drawn += 1
        for end in range(1, math.ceil(max(x for x, _ in steps)) + 1):
            loss_ax.axvline(end, color="grey", ls=":", lw=0.8)
    for key, label, style in (("train_loss", "train loss", "o-"), ("eval_loss", "eval loss", "s--")):
        xs, ys = _points(records, key)
        if xs:
            loss_ax.plot(xs, ys, style, label=label)
            drawn += 1
    if drawn:
        loss_ax.set_xlabel("epoch")
        loss_ax.set_ylabel("loss")
        loss_ax.legend()
        loss_ax.grid(alpha=0.3)
    else:
        _no_data(loss_ax, "no loss logged")
    loss_ax.set_title("Loss")
    xs, ys = _points(records, "eval_f1")
    if xs:
        f1_ax.plot(xs, ys, "o-", color="tab:green", label="dev F1")
        best = max(range(len(ys)), key=lambda k: (ys[k], -k))
        f1_ax.annotate(
            f"best {ys[best]:.4f}", (xs[best], ys[best]), textcoords="offset points", xytext=(0, 8), ha="center"
        )
        f1_ax.set_xlabel("epoch")
        f1_ax.set_ylabel("F1 (strict IOB2, micro)")
        f1_ax.set_ylim(0.0, 1.05)
        f1_ax.grid(alpha=0.3)
    else:
        _no_data(f1_ax, "no dev F1 logged")
    f1_ax.set_title("Dev F1")
    if all(r.epoch is not None and float(r.epoch).is_integer() for r in records):
        for ax in (loss_ax, f1_ax):
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    tight_layout(fig)
    return fig


def plot_per_type_f1(result: EvalResult, path: str | Path, *, title: str = "F1 per entity type") -> Path:
    """Write :func:`per_type_f1_figure` to ``path`` as PNG."""
    return _save(per_type_f1_figure(result, title=title), path)


def per_type_f1_figure(result: EvalResult, *, title: str = "F1 per entity type") -> Figure:
    """Horizontal bars of each type's F1 (support in the label), with the micro and macro F1 as lines; past
    :data:`MAX_TYPES_SHOWN` types, those of most support (the report's table lists every one)."""
    types = list(result.per_type)
    if len(types) > MAX_TYPES_SHOWN:
        title = f"{title}: the {MAX_TYPES_SHOWN} of most support, of {len(types)}"
        by_support = sorted(types, key=lambda t: (-result.per_type[t].support, t))[:MAX_TYPES_SHOWN]
        types = [t for t in types if t in set(by_support)]
    fig = _new_figure(figsize=(7.0, max(3.0, 0.45 * len(types) + 1.5)))
    ax = fig.add_subplot()
    ax.set_title(f"{title} ({result.mode} {result.scheme})")
    if not types:
        _no_data(ax, "no entities in gold or predictions")
        return fig
    scores = [result.per_type[t].f1 for t in types]
    labels = [f"{t} (n={result.per_type[t].support})" for t in types]
    positions = list(range(len(types)))
    ax.barh(positions, scores, color="tab:blue")
    ax.set_yticks(positions, labels=labels)
    ax.invert_yaxis()
    for y, s in zip(positions, scores, strict=True):
        ax.text(min(s + 0.01, 0.92), y, f"{s:.3f}", va="center", fontsize=8)
    ax.axvline(result.micro.f1, color="tab:red", linestyle="--", label=f"micro {result.micro.f1:.3f}")
    ax.axvline(result.macro.f1, color="tab:orange", linestyle=":", label=f"macro {result.macro.f1:.3f}")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("F1")
    ax.legend(loc="lower right")
    tight_layout(fig)
    return fig


def plot_reliability(calibration: Mapping[str, Any], path: str | Path) -> Path:
    """Write :func:`reliability_figure` to ``path`` as PNG."""
    return _save(reliability_figure(calibration), path)


def reliability_figure(calibration: Mapping[str, Any]) -> Figure:
    """Accuracy against confidence per bin, raw and calibrated entity scores, with the diagonal of perfect
    calibration; ``calibration`` holds ``bins_before``/``bins_after`` as ``[confidence, accuracy, count]``."""
    fig = _new_figure(figsize=(5.5, 5.0))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="perfectly calibrated")
    for key, label, style in (("bins_before", "raw", "o--"), ("bins_after", "calibrated", "s-")):
        bins = calibration.get(key) or []
        if bins:
            ece = calibration.get("ece_before" if key == "bins_before" else "ece_after")
            ax.plot([b[0] for b in bins], [b[1] for b in bins], style, label=f"{label} (ECE {ece:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("entity score (confidence)")
    ax.set_ylabel("share of entities that are right")
    t, b = calibration.get("temperature", 1.0), calibration.get("shift", 0.0)
    ax.set_title(f"Entity-score reliability (temperature {t:g}, shift {b:g})")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    tight_layout(fig)
    return fig
