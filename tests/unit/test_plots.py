"""Token confusion matrix values, and PNG figures drawn from the data."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from nerforge.errors import LengthMismatchError, UsageError
from nerforge.evaluation import (
    evaluate,
    normalize_rows,
    plot_confusion,
    plot_per_type_f1,
    plot_training_curves,
    tag_to_type,
    token_confusion,
)
from nerforge.evaluation.plots import confusion_figure, per_type_f1_figure, training_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "O"]]
PRED = [["B-PER", "B-LOC", "O", "O"], ["B-ORG", "I-PER", "B-LOC"]]

EPOCHS = [
    {"epoch": 1, "train_loss": 1.2, "eval_loss": 1.0, "eval_f1": 0.30},
    {"epoch": 2, "train_loss": 0.7, "eval_loss": None, "eval_f1": 0.55},
    {"epoch": 3, "train_loss": 0.4, "eval_loss": 0.6},  # eval_f1 missing
]


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# --- confusion matrix ------------------------------------------------------------------------------------------


def test_confusion_counts_by_type():
    cm = token_confusion(GOLD, PRED)
    assert cm.labels == ("O", "LOC", "ORG", "PER")
    expected = np.array(
        [
            # O  LOC ORG PER   (predicted)
            [1, 1, 0, 0],  # gold O: one O, one predicted B-LOC
            [1, 0, 0, 0],  # gold LOC predicted O
            [0, 0, 1, 1],  # gold ORG: B-ORG right, I-ORG predicted as I-PER
            [0, 1, 0, 1],  # gold PER: B-PER right, I-PER predicted as B-LOC
        ]
    )
    np.testing.assert_array_equal(cm.matrix, expected)
    assert cm.total == 7
    assert cm.count("ORG", "PER") == 1 and cm.count("PER", "PER") == 1
    with pytest.raises(ValueError):
        cm.matrix[0, 0] = 5  # read-only


def test_confusion_normalized_rows():
    cm = token_confusion(GOLD, PRED, labels=["O", "PER", "ORG", "LOC", "MISC"])
    assert cm.labels == ("O", "PER", "ORG", "LOC", "MISC")
    norm = cm.normalized()
    np.testing.assert_allclose(norm[0], [0.5, 0, 0, 0.5, 0])
    np.testing.assert_allclose(norm[1], [0, 0.5, 0, 0.5, 0])
    np.testing.assert_array_equal(norm[4], np.zeros(5))  # MISC never in gold: stays zero, no NaN
    np.testing.assert_allclose(norm[:4].sum(axis=1), np.ones(4))
    np.testing.assert_array_equal(normalize_rows(np.array([[0, 0], [3, 1]])), [[0, 0], [0.75, 0.25]])


def test_confusion_checks():
    with pytest.raises(UsageError, match="PER"):
        token_confusion(GOLD, PRED, labels=["O", "LOC", "ORG"])
    with pytest.raises(LengthMismatchError, match="sentence 1"):
        token_confusion(GOLD, [PRED[0], PRED[1][:2]])
    with pytest.raises(UsageError, match="XYZ"):
        token_confusion(GOLD, PRED).count("XYZ", "O")
    assert tag_to_type("I-GPE") == "GPE" and tag_to_type("O") == "O" and tag_to_type("LOC_B") == "LOC"
    assert token_confusion([], []).labels == ("O",)
    d = token_confusion([["B-X"]], [["O"]]).to_dict()
    assert d["labels"] == ["O", "X"] and d["matrix"] == [[0, 0], [1, 0]]


# --- figures, inspected before they are drawn ---------------------------------------------------------------------


def test_confusion_figure_annotates_every_count():
    cm = token_confusion(GOLD, PRED)
    fig = confusion_figure(cm)
    ax = fig.axes[0]
    texts = sorted((round(t.get_position()[1]), round(t.get_position()[0]), t.get_text()) for t in ax.texts)
    expected = sorted((i, j, str(cm.matrix[i, j])) for i in range(4) for j in range(4))
    assert texts == expected
    assert [t.get_text() for t in ax.get_xticklabels()] == list(cm.labels)


def test_training_figure_plots_the_logged_values_and_skips_missing_ones():
    fig = training_figure(EPOCHS)
    loss_ax, f1_ax = fig.axes[:2]
    lines = {line.get_label(): line.get_xydata().tolist() for line in loss_ax.get_lines()}
    assert lines == {
        "train loss": [[1, 1.2], [2, 0.7], [3, 0.4]],
        "eval loss": [[1, 1.0], [3, 0.6]],
    }
    (f1_line,) = f1_ax.get_lines()
    assert f1_line.get_xydata().tolist() == [[1, 0.30], [2, 0.55]]
    assert any("best 0.5500" in t.get_text() for t in f1_ax.texts)


def test_per_type_f1_figure_bars_are_the_scores():
    result = evaluate(GOLD, PRED)
    ax = per_type_f1_figure(result).axes[0]
    widths = [round(p.get_width(), 9) for p in ax.patches]
    assert widths == [round(result.per_type[t].f1, 9) for t in result.per_type]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        f"{t} (n={result.per_type[t].support})" for t in result.per_type
    ]


# --- PNG files -----------------------------------------------------------------------------------------------------


def test_plots_write_valid_pngs_from_the_data(tmp_path):
    result = evaluate(GOLD, PRED)
    cm = token_confusion(GOLD, PRED)
    paths = [
        plot_confusion(cm, tmp_path / "cm.png"),
        plot_training_curves(EPOCHS, tmp_path / "curves.png"),
        plot_per_type_f1(result, tmp_path / "f1.png"),
    ]
    for path in paths:
        w, h = png_size(path)
        assert w >= 300 and h >= 250
        assert path.stat().st_size > 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cm.png", "curves.png", "f1.png"]  # no temp files left

    # Same data, same bytes; other data, other bytes.
    again = plot_confusion(cm, tmp_path / "cm2.png")
    assert again.read_bytes() == paths[0].read_bytes()
    other = plot_confusion(token_confusion(GOLD, GOLD), tmp_path / "cm3.png")
    assert other.read_bytes() != paths[0].read_bytes()
    other_curves = plot_training_curves(EPOCHS[:2], tmp_path / "curves2.png")
    assert other_curves.read_bytes() != paths[1].read_bytes()
    other_f1 = plot_per_type_f1(evaluate(GOLD, GOLD), tmp_path / "f1b.png")
    assert other_f1.read_bytes() != paths[2].read_bytes()


def test_plots_grow_with_the_number_of_labels(tmp_path):
    small = png_size(plot_confusion(token_confusion([["B-A"]], [["O"]]), tmp_path / "s.png"))
    many = [[f"B-T{i}" for i in range(12)]]
    large = png_size(plot_confusion(token_confusion(many, many), tmp_path / "l.png"))
    assert large[0] > small[0] and large[1] > small[1]


def test_plots_handle_empty_data(tmp_path):
    empty = evaluate([["O"]], [["O"]])
    for path in (
        plot_per_type_f1(empty, tmp_path / "f1.png"),
        plot_training_curves([{"epoch": 1}], tmp_path / "curves.png"),
        plot_confusion(token_confusion([], []), tmp_path / "cm.png"),
    ):
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert any("no dev F1" in t.get_text() for t in training_figure([{"epoch": 1}]).axes[1].texts)


def test_plot_failure_leaves_no_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def boom(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", boom)
    with pytest.raises(RuntimeError):
        plot_per_type_f1(evaluate(GOLD, PRED), tmp_path / "f1.png")
    assert list(tmp_path.iterdir()) == []
