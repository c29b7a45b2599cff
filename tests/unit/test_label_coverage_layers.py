"""What a run counts of data with several layers: every layer a model learns, not the first layer's tags alone (a
layered SkillSpan run logged "labels (1 types): Skill" and counted only skill entities in dev)."""

from __future__ import annotations

import logging

import pytest

from nerforge.data.splits import restrict_types
from nerforge.errors import DataFormatError
from nerforge.training.dataset import check_label_coverage
from nerforge.types import Example, Span


def layered(tokens: tuple[str, ...], spans: tuple[Span, ...], line: int) -> Example:
    """An example read from two tag columns: its tags are the first layer's (``skill``), its spans both layers'."""
    tags = ["O"] * len(tokens)
    for s in spans:
        if s.layer == "skill":
            tags[s.start : s.end] = [f"B-{s.label}"] + [f"I-{s.label}"] * (s.end - s.start - 1)
    return Example(tokens, tuple(tags), source="data.conll", line=line, spans=spans, layers=("skill", "knowledge"))


WORDS = ("we", "use", "Python", "daily")
TRAIN = [layered(WORDS, (Span(2, 3, "Knowledge", "knowledge"),), 1)]  # no skill in train at all
DEV = [
    layered(WORDS, (Span(1, 3, "Skill", "skill"), Span(2, 3, "Knowledge", "knowledge")), 10),
    layered(WORDS, (Span(2, 3, "Tool", "knowledge"),), 20),
]


def test_every_layer_counts_for_a_model_of_every_layer() -> None:
    coverage = check_label_coverage({"train": TRAIN, "dev": DEV}, "train.conll", every_layer=True)
    assert coverage.train_types == ("Knowledge",)
    assert coverage.dev_entities == 3
    assert set(coverage.unseen_in_train) == {"Skill", "Tool"}
    assert coverage.unseen_in_train["Tool"] == "data.conll:20"


def test_a_flat_model_counts_the_tags_it_learns() -> None:
    with pytest.raises(DataFormatError, match="no entities"):  # the first layer's tags: nothing to learn
        check_label_coverage({"train": TRAIN, "dev": DEV}, "train.conll")
    only = [layered(WORDS, (Span(1, 3, "Skill", "skill"), Span(2, 3, "Knowledge", "knowledge")), 1)]
    coverage = check_label_coverage({"train": only, "dev": DEV}, "train.conll")
    assert coverage.train_types == ("Skill",) and coverage.dev_entities == 1 and not coverage.unseen_in_train


def test_data_labels_leave_out_the_spans_of_every_layer(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        out = restrict_types({"train": DEV}, ["Skill", "Knowledge"])
    kept = out["train"]
    assert kept[0].spans == DEV[0].spans and kept[0].tags == DEV[0].tags
    assert kept[1].spans == ()  # Tool (knowledge layer only) is not learned
    assert "data.labels leaves out Tool" in caplog.text and "train 1" in caplog.text
    with caplog.at_level(logging.WARNING):
        out = restrict_types({"train": DEV}, ["Knowledge"])
    assert [s.label for s in out["train"][0].spans or ()] == ["Knowledge"] and out["train"][0].tags == ("O",) * 4
