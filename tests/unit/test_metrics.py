"""Strict IOB2 metrics: hand-worked cases, input checks, and a differential test against seqeval."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nerforge.errors import LengthMismatchError, NerforgeError, TagSchemeError, UsageError
from nerforge.evaluation import EpochRecord, coerce_epochs, evaluate

seqeval_metrics = pytest.importorskip("seqeval.metrics")
seqeval_scheme = pytest.importorskip("seqeval.scheme")

TYPES = ("PER", "LOC", "ORG", "GPE-X")
TAGS = ("O",) + tuple(f"{p}-{t}" for t in TYPES for p in ("B", "I"))


# --- hand-worked cases -------------------------------------------------------------------------------------------


def test_metrics_hand_worked_counts_and_averages():
    gold = [
        ["B-PER", "I-PER", "O", "B-LOC"],  # PER[0,2) LOC[3,4)
        ["B-ORG", "O", "B-PER"],  # ORG[0,1) PER[2,3)
        ["O", "O"],  # no entity
    ]
    pred = [
        ["B-PER", "I-PER", "O", "B-ORG"],  # PER exact; ORG spurious; LOC missed
        ["B-ORG", "O", "B-PER"],  # both exact
        ["O", "B-LOC"],  # spurious LOC
    ]
    r = evaluate(gold, pred)
    assert (r.micro.tp, r.micro.fp, r.micro.fn, r.micro.support) == (3, 2, 1, 4)
    assert r.micro.precision == pytest.approx(3 / 5)
    assert r.micro.recall == pytest.approx(3 / 4)
    assert r.micro.f1 == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert set(r.per_type) == {"LOC", "ORG", "PER"}
    loc, org, per = r.per_type["LOC"], r.per_type["ORG"], r.per_type["PER"]
    assert (loc.tp, loc.fp, loc.fn, loc.support, loc.precision, loc.recall, loc.f1) == (0, 1, 1, 1, 0.0, 0.0, 0.0)
    assert (org.tp, org.fp, org.fn, org.support) == (1, 1, 0, 1)
    assert (org.precision, org.recall) == (0.5, 1.0)
    assert org.f1 == pytest.approx(2 / 3)
    assert (per.precision, per.recall, per.f1, per.support) == (1.0, 1.0, 1.0, 2)
    assert r.macro.f1 == pytest.approx((0 + 2 / 3 + 1) / 3)
    assert r.macro.precision == pytest.approx(0.5)
    assert r.weighted.f1 == pytest.approx((0 * 1 + 2 / 3 * 1 + 1 * 2) / 4)
    assert r.weighted.support == r.macro.support == 4
    assert r.token_accuracy == pytest.approx(7 / 9)
    assert (r.n_sentences, r.n_tokens) == (3, 9)
    assert r.types == ("LOC", "ORG", "PER")


def test_metrics_strict_mode_ignores_stray_inside_tags():
    # Lenient (conlleval) decoding would read I-PER I-PER as a PER entity and score it correct.
    r = evaluate([["I-PER", "I-PER", "O"]], [["I-PER", "I-PER", "O"]])
    assert r.per_type == {}
    assert (r.micro.tp, r.micro.support, r.micro.n_pred) == (0, 0, 0)
    assert r.token_accuracy == 1.0
    # B-PER I-LOC: the span stops at the type change, I-LOC starts nothing.
    r = evaluate([["B-PER", "I-LOC"]], [["B-PER", "O"]])
    assert r.per_type["PER"].tp == 1
    assert "LOC" not in r.per_type


def test_metrics_boundary_mismatch_is_both_fp_and_fn():
    r = evaluate([["B-LOC", "I-LOC", "I-LOC"]], [["B-LOC", "I-LOC", "O"]])
    assert (r.micro.tp, r.micro.fp, r.micro.fn) == (0, 1, 1)
    assert r.micro.f1 == 0.0


def test_metrics_zero_division_gives_zero():
    r = evaluate([["O", "O"]], [["O", "O"]])
    for avg in (r.micro, r.macro, r.weighted):
        assert (avg.precision, avg.recall, avg.f1, avg.support) == (0.0, 0.0, 0.0, 0)
    r = evaluate([], [])
    assert (r.n_sentences, r.n_tokens, r.token_accuracy, r.micro.f1) == (0, 0, 0.0, 0.0)
    # Predictions only: precision 0/1 -> 0, recall 0/0 -> 0.
    r = evaluate([["O"]], [["B-PER"]])
    assert r.per_type["PER"].to_dict() == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
        "tp": 0,
        "fp": 1,
        "fn": 0,
    }


def test_metrics_to_dict_names_mode_and_scheme():
    r = evaluate([["B-PER", "O"]], [["B-PER", "O"]])
    d = r.to_dict()
    assert d["mode"] == "strict" and d["scheme"] == "IOB2"
    assert set(d["micro"]) >= {"precision", "recall", "f1"}
    assert set(d["macro"]) >= {"precision", "recall", "f1"}
    assert set(d["weighted"]) >= {"precision", "recall", "f1"}
    assert d["per_type"]["PER"]["support"] == 1 and d["per_type"]["PER"]["f1"] == 1.0
    assert d["token_accuracy"] == 1.0
    assert "strict IOB2" in r.summary()


# --- input checks -------------------------------------------------------------------------------------------------


def test_metrics_length_mismatch_names_sentence_and_lengths():
    with pytest.raises(LengthMismatchError) as info:
        evaluate([["O"], ["B-PER", "O", "O"]], [["O"], ["B-PER", "O"]])
    assert isinstance(info.value, NerforgeError)
    msg = str(info.value)
    assert "sentence 1" in msg and "3 gold" in msg and "2 predicted" in msg
    assert info.value.code == "E401"


def test_metrics_sentence_count_mismatch():
    with pytest.raises(LengthMismatchError, match="2 gold sentences but 1 predicted"):
        evaluate([["O"], ["O"]], [["O"]])


@pytest.mark.parametrize("bad", ["E-PER", "S-PER", "X-PER", "B"])
def test_metrics_rejects_non_iob2_tags(bad):
    with pytest.raises(TagSchemeError, match="predicted sentence 1, token 0"):
        evaluate([["O"], ["O"]], [["O"], [bad]])


# --- epoch records --------------------------------------------------------------------------------------------


def test_epoch_records_from_dicts_fill_missing_epoch():
    recs = coerce_epochs([{"train_loss": 1.5, "loss_scale": 3}, EpochRecord(epoch=7, eval_f1=0.5), {"epoch": 3}])
    assert [r.epoch for r in recs] == [1.0, 7, 3.0]
    assert recs[0].train_loss == 1.5 and recs[0].eval_loss is None
    assert recs[1].to_dict() == {"epoch": 7, "train_loss": None, "eval_loss": None, "eval_f1": 0.5,
                                 "eval_precision": None, "eval_recall": None, "eval_token_accuracy": None}  # fmt: skip
    with pytest.raises(UsageError, match="epoch record 0: eval_f1"):
        coerce_epochs([{"eval_f1": "high"}])
    with pytest.raises(UsageError, match="epoch record 1: train_loss"):
        coerce_epochs([{}, {"train_loss": True}])
    # numpy scalars (what a trainer often logs) are numbers too
    (rec,) = coerce_epochs([{"epoch": np.int64(2), "eval_f1": np.float32(0.5)}])
    assert (rec.epoch, rec.eval_f1) == (2.0, 0.5) and type(rec.eval_f1) is float


# --- differential test against seqeval -------------------------------------------------------------------------


@st.composite
def valid_sentence(draw, max_len=10):
    """Well-formed IOB2: random spans written out as B-X I-X..."""
    n = draw(st.integers(0, max_len))
    tags: list[str] = []
    while len(tags) < n:
        if draw(st.booleans()):
            tags.append("O")
            continue
        t = draw(st.sampled_from(TYPES))
        k = draw(st.integers(1, 3))
        tags += [f"B-{t}"] + [f"I-{t}"] * (k - 1)
    return tags[:n]


def random_sentence(max_len=10):
    """Any mix of B/I/O tags, including I- after O or after another type."""
    return st.lists(st.sampled_from(TAGS), max_size=max_len)


@st.composite
def gold_and_pred(draw):
    n_sent = draw(st.integers(1, 6))  # seqeval rejects an empty corpus
    gold, pred = [], []
    for _ in range(n_sent):
        g = draw(st.one_of(valid_sentence(), random_sentence()))
        kind = draw(st.sampled_from(["copy", "mutate", "random"]))
        if kind == "copy":
            p = list(g)
        elif kind == "random":
            p = draw(st.lists(st.sampled_from(TAGS), min_size=len(g), max_size=len(g)))
        else:
            p = list(g)
            for i in range(len(p)):
                if draw(st.integers(0, 3)) == 0:
                    p[i] = draw(st.sampled_from(TAGS))
        gold.append(g)
        pred.append(p)
    return gold, pred


def _close(ours: float, theirs: float) -> bool:
    theirs = float(theirs)
    if math.isnan(theirs):  # seqeval's macro average over no types at all; ours is 0.0
        return ours == 0.0
    return abs(ours - theirs) <= 1e-9


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gold_and_pred())
def test_metrics_match_seqeval_strict_iob2(data):
    gold, pred = data
    ours = evaluate(gold, pred)
    kw = {"mode": "strict", "scheme": seqeval_scheme.IOB2}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = seqeval_metrics.classification_report(gold, pred, output_dict=True, **kw)
        for average, mine in (("micro", ours.micro), ("macro", ours.macro), ("weighted", ours.weighted)):
            p = seqeval_metrics.precision_score(gold, pred, average=average, **kw)
            r = seqeval_metrics.recall_score(gold, pred, average=average, **kw)
            f = seqeval_metrics.f1_score(gold, pred, average=average, **kw)
            assert _close(mine.precision, p), (average, "precision", mine, p)
            assert _close(mine.recall, r), (average, "recall", mine, r)
            assert _close(mine.f1, f), (average, "f1", mine, f)
            row = report[f"{average} avg"]
            assert _close(mine.f1, row["f1-score"]) and int(row["support"]) == mine.support
        if any(len(s) for s in gold):
            assert _close(ours.token_accuracy, seqeval_metrics.accuracy_score(gold, pred))
    types = {k for k in report if not k.endswith(" avg")}
    assert set(ours.per_type) == types
    for t in types:
        mine, row = ours.per_type[t], report[t]
        assert _close(mine.precision, row["precision"]), (t, mine, row)
        assert _close(mine.recall, row["recall"]), (t, mine, row)
        assert _close(mine.f1, row["f1-score"]), (t, mine, row)
        assert mine.support == int(row["support"])
        assert mine.tp + mine.fn == mine.support
