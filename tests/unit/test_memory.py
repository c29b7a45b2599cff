"""Training memory known before it is spent (issue 27, item 8): the estimate's terms and the refusal with the setting
that fits. The estimate itself is checked against measured peaks by bench/many_types.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nerforge.errors import UsageError
from nerforge.training.memory import MB, MEMORY_ENV, Workload, available, check_fits, estimate

MINILM = Workload(params=22_700_000, hidden=384, ffn=1536, layers=6, heads=12, batch=16, eval_batch=32, length=128,
                  tags=9, crf=True)


@given(batch=st.integers(1, 256), length=st.integers(8, 512), tags=st.integers(3, 2000))
def test_the_estimate_grows_with_batch_length_and_tags(batch: int, length: int, tags: int) -> None:
    w = replace(MINILM, batch=batch, length=length, tags=tags)
    base = estimate(w).total
    assert estimate(replace(w, batch=batch + 1)).total > base
    assert estimate(replace(w, length=length + 1)).total > base
    assert estimate(replace(w, tags=tags + 1)).total > base
    assert estimate(replace(w, crf=False)).total < base
    assert estimate(replace(w, half=True)).total < base


def test_a_crf_s_training_terms_grow_linearly_with_the_tag_count() -> None:
    """The kept CRF sums are linear in tags; only evaluation's Viterbi step (no gradient, float64) is quadratic."""
    small, large = (replace(MINILM, tags=t, eval_batch=1) for t in (100, 1000))
    viterbi = 3 * 1 * 8
    train_part = (estimate(large).head - viterbi * 1000**2) / (estimate(small).head - viterbi * 100**2)
    assert train_part == pytest.approx(10)


def test_a_run_that_fits_passes_and_one_that_does_not_names_the_batch_size_that_fits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    need = estimate(MINILM).total
    monkeypatch.setenv(MEMORY_ENV, str(need / MB + 1))
    assert check_fits(MINILM).total == need
    big = replace(MINILM, batch=128, length=256)
    with pytest.raises(UsageError) as caught:
        check_fits(big, accumulation=2)
    text = str(caught.value)
    assert "batches of 128 windows of 256 subwords" in text and "--batch-size " in text
    suggested = int(text.split("--batch-size ")[1].split()[0])
    assert estimate(replace(big, batch=suggested)).total <= need + MB  # what it suggests fits
    assert estimate(replace(big, batch=suggested * 2)).total > need + MB  # and is the largest that does
    assert f"gradient_accumulation_steps={2 * 128 // suggested}" in text


def test_when_no_batch_fits_it_says_what_else_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_ENV, "100")  # less than the process itself
    with pytest.raises(UsageError, match="no batch size fits"):
        check_fits(MINILM)
    wide = replace(MINILM, batch=1, length=512, tags=4000, eval_batch=64)  # the Viterbi step of 4000 tags dominates
    monkeypatch.setenv(MEMORY_ENV, str(estimate(replace(wide, crf=False)).total / MB + 1))
    with pytest.raises(UsageError, match="--head plain fits"):
        check_fits(wide)


def test_the_setting_turns_the_check_off_or_is_refused_when_not_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_ENV, "0")
    assert available() is None
    assert check_fits(replace(MINILM, batch=100_000)).total > 0
    monkeypatch.setenv(MEMORY_ENV, "lots")
    with pytest.raises(UsageError, match=MEMORY_ENV):
        available()
    monkeypatch.delenv(MEMORY_ENV)
    free = available()
    assert free is None or free > 0
