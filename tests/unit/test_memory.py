"""Training memory known before it is spent (issue 27, item 8): the estimate's terms and the refusal with the setting
that fits. The estimate itself is checked against measured peaks by bench/many_types.py."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nerforge.errors import UsageError
from nerforge.modeling.head import HeadSpec
from nerforge.modeling.plan import HeadPlan
from nerforge.training.memory import MB, MEMORY_ENV, available, check_fits, estimate, workload

MINILM = SimpleNamespace(
    hidden_size=384,
    intermediate_size=1536,
    num_hidden_layers=6,
    num_attention_heads=12,
    vocab_size=30522,
    max_position_embeddings=512,
    type_vocab_size=2,
)
CRF = HeadSpec(features=("shape",), crf=True)


def tags(types: int) -> tuple[str, ...]:
    return ("O", *(f"{p}-T{k}" for k in range(types) for p in "BI"))


def minilm(spec: HeadSpec = CRF, types: int = 4, **kw: int) -> object:
    values = {"batch": 16, "eval_batch": 32, "length": 128, **kw}
    return workload(MINILM, HeadPlan(spec, tags(types), 128, 32), half=False, **values)


@given(batch=st.integers(1, 256), length=st.integers(8, 512), types=st.integers(1, 1000))
def test_the_estimate_grows_with_batch_length_and_tags(batch: int, length: int, types: int) -> None:
    base = estimate(minilm(types=types, batch=batch, length=length)).total
    assert estimate(minilm(types=types, batch=batch + 1, length=length)).total > base
    assert estimate(minilm(types=types, batch=batch, length=length + 1)).total > base
    one, more = minilm(types=types, batch=batch, length=length), minilm(types=types + 1, batch=batch, length=length)
    assert estimate(more).total - more.head_decode > base - one.head_decode  # decoding is a bounded group, apart
    assert estimate(minilm(HeadSpec(), types=types, batch=batch, length=length)).total < base
    assert estimate(replace(minilm(types=types, batch=batch, length=length), half=True)).total < base


def test_a_crf_s_training_terms_grow_linearly_with_the_tag_count() -> None:
    """What the CRF keeps for the gradient is linear in tags; decoding's Viterbi step (no gradient) is quadratic per
    chain, and chains are decoded in groups that fit a fixed budget."""
    small, large = (HeadPlan(CRF, tags(t), 128, 32) for t in (100, 1000))
    ratio = large.training_bytes_per_token() / small.training_bytes_per_token()
    assert ratio == pytest.approx(len(large.tags) / len(small.tags))
    from nerforge.modeling.viterbi import STEP_BYTES

    # decoding holds one group of chains at a time: bounded whatever the tag count (4.7 GB for 597 tags before)
    assert small.decode_bytes() <= STEP_BYTES and large.decode_bytes() <= max(STEP_BYTES, 3 * 8 * len(large.tags) ** 2)
    assert HeadPlan(HeadSpec(), tags(1000), 128, 32).decode_bytes() == 0


def test_a_run_that_fits_passes_and_one_that_does_not_names_the_batch_size_that_fits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    need = estimate(minilm()).total
    monkeypatch.setenv(MEMORY_ENV, str(need / MB + 1))
    assert check_fits(minilm()).total == need
    big = minilm(batch=128, length=256)
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
        check_fits(minilm())
    wide = minilm(types=2000, batch=1, length=512, eval_batch=64)  # the Viterbi step of 4001 tags dominates
    plain = minilm(HeadSpec(), types=2000, batch=1, length=512, eval_batch=64)
    monkeypatch.setenv(MEMORY_ENV, str(estimate(plain).total / MB + 1))
    with pytest.raises(UsageError, match="--head plain fits"):
        check_fits(wide)


def test_the_setting_turns_the_check_off_or_is_refused_when_not_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_ENV, "0")
    assert available() is None
    assert check_fits(minilm(batch=100_000)).total > 0
    monkeypatch.setenv(MEMORY_ENV, "lots")
    with pytest.raises(UsageError, match=MEMORY_ENV):
        available()
    monkeypatch.delenv(MEMORY_ENV)
    free = available()
    assert free is None or free > 0


def test_a_layered_heads_own_top_layers_count_as_layers_of_the_encoder() -> None:
    """``model.head.own_top_layers = 2`` with three layers of entities adds two copies of two transformer layers:
    their weights, Adam state and activations are counted like the encoder's own."""
    from nerforge.training.memory import layer_params

    layers = tuple((name, ("O", f"B-{name}", f"I-{name}")) for name in ("a", "b", "c"))
    every = tuple(t for _, t in layers for t in t)
    shared = workload(MINILM, HeadPlan(HeadSpec(crf=True, layers=layers), every, 128, 32), half=False, batch=16,
                      eval_batch=32, length=128)  # fmt: skip
    spec = HeadSpec(crf=True, layers=layers, own_top_layers=2)
    copied = workload(MINILM, HeadPlan(spec, every, 128, 32), half=False, batch=16, eval_batch=32, length=128)
    assert copied.layers == shared.layers + 4 == 10
    assert copied.params - shared.params == 4 * layer_params(MINILM)
    assert estimate(copied).total > estimate(shared).total
