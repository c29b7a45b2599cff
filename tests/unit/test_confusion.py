"""The token confusion matrix folds what a figure cannot show."""

from __future__ import annotations

from nerforge.evaluation.confusion import ConfusionMatrix


def test_a_confusion_of_hundreds_of_types_folds_the_rare_ones_and_keeps_every_count() -> None:
    """300 types drew a 21,000-pixel figure for minutes (bench/many_types.py); the figure now shows the most frequent
    and folds the rest into one row and column, with every token still counted."""
    import numpy as np

    from nerforge.evaluation.plots import MAX_TYPES_SHOWN, confusion_figure

    rng = np.random.default_rng(0)
    labels = ("O", *(f"T{k:03d}" for k in range(300)))
    counts = rng.integers(0, 5, size=(301, 301))
    counts[1:11, 1:11] += 400  # ten frequent types
    cm = ConfusionMatrix(labels, counts)
    folded = cm.folded(MAX_TYPES_SHOWN - 1)
    assert len(folded.labels) == MAX_TYPES_SHOWN + 1 and folded.labels[0] == "O" and folded.labels[-1] == "other types"
    assert folded.total == cm.total
    assert {f"T{k:03d}" for k in range(10)} <= set(folded.labels)  # the frequent ones are shown
    assert folded.count("T000", "T000") == cm.count("T000", "T000")
    fig = confusion_figure(cm)
    width, height = fig.get_size_inches()
    assert width * height < 40 * 40 and "most frequent of 300 types" in fig.axes[0].get_title()


def test_the_per_type_figure_of_hundreds_of_types_shows_those_of_most_support() -> None:
    from nerforge.evaluation import evaluate
    from nerforge.evaluation.plots import MAX_TYPES_SHOWN, per_type_f1_figure

    gold = [[f"B-T{k:03d}"] * 1 + ["O"] for k in range(200)] + [["B-T000", "O"]] * 50
    result = evaluate(gold, gold)
    fig = per_type_f1_figure(result)
    ax = fig.axes[0]
    shown = [t.get_text().split(" (")[0] for t in ax.get_yticklabels()]
    assert len(shown) == MAX_TYPES_SHOWN and "T000" in shown  # the type of most support is among them
    assert fig.get_size_inches()[1] < 20 and "of 200" in ax.get_title()
