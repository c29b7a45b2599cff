"""Markdown report contents, metrics.json keys and values, files written atomically."""

from __future__ import annotations

import doctest
import json

import pytest

from nerforge.evaluation import (
    ErrorAnalysis,
    EvalResult,
    evaluate_tags,
    render_markdown,
    token_confusion,
    write_evaluation,
    write_report,
)
from nerforge.evaluation import errors_analysis as errors_module
from nerforge.evaluation import metrics as metrics_module
from nerforge.evaluation import report as report_module

# Hand-worked: LOC P 0 R 0 F 0 (n=1); ORG P 1/2 R 1 F 2/3 (n=1); PER P 1 R 1 F 1 (n=2).
# micro P 3/5 R 3/4 F 2/3; macro P 1/2 R 2/3 F 5/9; weighted P 5/8 R 3/4 F 2/3; token accuracy 7/9.
# Errors: 3 exact, 1 type (London LOC -> ORG), 1 spurious (end LOC).
TOKENS = [["Ada", "Lovelace", "in", "London"], ["Acme", "hired", "Bob"], ["the", "end"]]
GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"], ["O", "O"]]
PRED = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "B-PER"], ["O", "B-LOC"]]
EPOCHS = [
    {"epoch": 1, "train_loss": 1.2, "eval_loss": 1.0, "eval_f1": 0.3},
    {"epoch": 2, "train_loss": 0.7, "eval_loss": None, "eval_f1": 0.55},
    {"epoch": 3, "train_loss": float("nan"), "eval_loss": 0.9, "eval_f1": 0.5},
]


@pytest.fixture(scope="module")
def evaluated() -> tuple[EvalResult, ErrorAnalysis]:
    return evaluate_tags(GOLD, PRED, TOKENS)


def test_evaluate_tags_returns_scores_and_analysis(evaluated):
    result, analysis = evaluated
    assert result.micro.tp == analysis.counts["exact"] == 3
    assert analysis.counts == {"exact": 3, "type": 1, "boundary": 0, "boundary_type": 0, "missed": 0, "spurious": 1}


def test_markdown_score_table_has_the_right_numbers(evaluated):
    md = render_markdown(*evaluated, title="Dev set")
    lines = md.splitlines()
    assert lines[0] == "# Dev set"
    for row in (
        "| LOC | 0.0000 | 0.0000 | 0.0000 | 1 |",
        "| ORG | 0.5000 | 1.0000 | 0.6667 | 1 |",
        "| PER | 1.0000 | 1.0000 | 1.0000 | 2 |",
        "| micro avg | 0.6000 | 0.7500 | 0.6667 | 4 |",
        "| macro avg | 0.5000 | 0.6667 | 0.5556 | 4 |",
        "| weighted avg | 0.6250 | 0.7500 | 0.6667 | 4 |",
        "Token accuracy: 0.7778",
    ):
        assert row in lines, row
    assert 'mode="strict"' in md and "IOB2" in md
    # Per-type rows come before the averages, sorted.
    assert lines.index("| LOC | 0.0000 | 0.0000 | 0.0000 | 1 |") < lines.index("| PER | 1.0000 | 1.0000 | 1.0000 | 2 |")
    assert lines.index("| PER | 1.0000 | 1.0000 | 1.0000 | 2 |") < lines.index(
        "| micro avg | 0.6000 | 0.7500 | 0.6667 | 4 |"
    )
    assert "## Training" not in md  # no epochs given
    assert "## Figures" not in md


def test_markdown_error_counts_and_examples(evaluated):
    lines = render_markdown(*evaluated).splitlines()
    assert "| exact match | 3 |" in lines
    assert "| type error (same boundaries, other type) | 1 |" in lines
    assert "| spurious (no overlapping gold entity) | 1 |" in lines
    assert "| missed (no overlapping prediction) | 0 |" in lines
    assert "| LOC | 0 | 1 | 0 | 0 | 0 | 1 |" in lines  # type error keyed by gold LOC, spurious by predicted LOC
    assert "- LOC → ORG: 1" in lines
    assert "- sentence 0: `Ada Lovelace in London`: gold `London` (LOC), predicted `London` (ORG)" in lines
    assert "- sentence 2: `the end`: predicted `end` (LOC)" in lines
    assert "#### missed (no overlapping prediction)" not in lines  # no examples, no heading


def test_markdown_epoch_table_and_plot_links(evaluated):
    md = render_markdown(*evaluated, epochs=EPOCHS, plots={"confusion": "confusion.png", "x": "sub/x.png"})
    lines = md.splitlines()
    assert "| 1 | 1.2000 | 1.0000 | 0.3000 |" in lines
    assert "| 2 | 0.7000 | – | 0.5500 |" in lines
    assert "| 3 | nan | 0.9000 | 0.5000 |" in lines
    assert "Best dev F1: 0.5500 at epoch 2." in lines
    assert "![Token confusion by entity type](confusion.png)" in lines
    assert "![x](sub/x.png)" in lines


def test_markdown_escapes_table_cells_and_code_spans():
    result, analysis = evaluate_tags([["B-A|B", "O"]], [["O", "O"]], [["x`y", "z"]])
    lines = render_markdown(result, analysis).splitlines()
    assert "| A\\|B | 0.0000 | 0.0000 | 0.0000 | 1 |" in lines
    assert "- sentence 0: `` x`y z ``: gold `` x`y `` (A\\|B)" in lines


def test_markdown_without_tokens_shows_positions():
    result, analysis = evaluate_tags([["O", "B-PER"]], [["O", "O"]])
    assert "- sentence 0: `tokens [1, 2)`: gold `[1, 2)` (PER)" in render_markdown(result, analysis).splitlines()


def test_write_report_writes_markdown_json_and_pngs(tmp_path, evaluated):
    result, analysis = evaluated
    out = tmp_path / "eval"
    cm = token_confusion(GOLD, PRED)
    files = write_report(out, result, analysis, EPOCHS, confusion=cm, title="Dev")
    assert files.report == out / "report.md" and files.metrics == out / "metrics.json"
    assert set(files.plots) == {"per_type_f1", "confusion", "training_curves"}
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["report.md", "metrics.json", "per_type_f1.png", "confusion.png", "training_curves.png"]
    )  # nothing else, no temporary files
    for png in files.plots.values():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png.name})" in files.report.read_text()

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    doc = json.loads(files.metrics.read_text(), parse_constant=no_constants)
    assert doc["mode"] == "strict" and doc["scheme"] == "IOB2"
    for avg in ("micro", "macro", "weighted"):
        assert {"precision", "recall", "f1"} <= set(doc[avg])
    assert doc["micro"]["precision"] == pytest.approx(0.6) and doc["macro"]["f1"] == pytest.approx(5 / 9)
    assert doc["weighted"]["precision"] == pytest.approx(0.625)
    assert set(doc["per_type"]) == {"LOC", "ORG", "PER"}
    assert doc["per_type"]["ORG"]["precision"] == 0.5 and doc["per_type"]["PER"]["support"] == 2
    assert {"precision", "recall", "f1", "support"} <= set(doc["per_type"]["LOC"])
    assert doc["token_accuracy"] == pytest.approx(7 / 9)
    assert doc["errors"]["counts"]["type"] == 1 and doc["errors"]["counts"]["exact"] == 3
    assert doc["epochs"][1] == {"epoch": 2.0, "train_loss": 0.7, "eval_loss": None, "eval_f1": 0.55,
                                "eval_precision": None, "eval_recall": None, "eval_token_accuracy": None}  # fmt: skip
    assert doc["epochs"][2]["train_loss"] is None  # NaN written as null
    assert doc["confusion"]["labels"] == ["O", "LOC", "ORG", "PER"]
    assert doc["confusion"]["matrix"] == cm.matrix.tolist()


def test_write_report_without_epochs_or_plots(tmp_path, evaluated):
    files = write_report(tmp_path, *evaluated, make_plots=False)
    assert files.plots == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "report.md"]
    assert json.loads(files.metrics.read_text())["epochs"] == []
    assert "## Figures" not in files.report.read_text()
    # Rewriting into the same directory replaces the files.
    files = write_report(tmp_path, *evaluate_tags(GOLD, GOLD, TOKENS), make_plots=False)
    assert json.loads(files.metrics.read_text())["micro"]["f1"] == 1.0


def test_write_evaluation_end_to_end(tmp_path):
    result, analysis, files = write_evaluation(tmp_path / "e", GOLD, PRED, TOKENS)
    assert result.micro.f1 == pytest.approx(2 / 3)
    assert set(files.plots) == {"per_type_f1", "confusion"}  # no epochs, no training curves
    text = files.report.read_text()
    assert "| micro avg | 0.6000 | 0.7500 | 0.6667 | 4 |" in text
    assert "![Token confusion by entity type](confusion.png)" in text


@pytest.mark.parametrize("module", [metrics_module, errors_module, report_module])
def test_docstring_examples(module):
    failures, tried = doctest.testmod(module)
    assert tried > 0 and failures == 0
