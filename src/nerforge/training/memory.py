"""Training memory known before it is spent: an estimate of a run's peak, and a refusal when it exceeds the machine.

The estimate counts what autograd keeps for a transformer encoder trained with AdamW (the terms of Korthikanti et
al., 2022, "Reducing Activation Recomputation in Large Transformer Models", per layer and token: about ``9h + 2f``
values, ``h`` the hidden size and ``f`` the feed-forward size, plus ``9`` bytes per attention score), the weights with
their gradients and the two Adam moments (16 bytes per parameter), the head (its own terms, from the head's plan:
logits, and for a CRF its forward sums and the Viterbi step of evaluation) and what a Python process with torch and transformers holds before any of that.
It is meant to be right within a factor of about 1.5 (``bench/many_types.py`` records it beside the measured peak).

What counts as available: ``NERFORGE_MEMORY_MB`` when set (``0`` turns the check off), else on a CUDA device the
free device memory, else the machine's available memory (``MemAvailable``) within the cgroup limit of a container.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerforge.errors import UsageError

MEMORY_ENV = "NERFORGE_MEMORY_MB"
# What autograd keeps beyond the counted terms (GELU and layer-norm statistics, allocator slack): measured with
# MiniLM-L6 on CPU, the counted activations times 1.6 matched the peak resident memory within 6% at batch 128 of CoNLL
# sentences (2.92 GB estimated, 2.76 GB measured) and at batch 32 of 256-subword windows (4.04 GB, 3.98 GB).
ACTIVATION_SLACK = 1.6
PROCESS_BASE = 700 * 2**20  # a Python process with torch, transformers and the tokenizer loaded, measured on CPU
ADAM_BYTES_PER_PARAM = 16  # fp32 weight, gradient and the two AdamW moments
MB = 2**20


@dataclass(frozen=True)
class Workload:
    """What a training run's memory depends on.

    Attributes:
        params: parameters of the encoder and its head.
        hidden: the encoder's hidden size; ``ffn`` its feed-forward size; ``layers``, ``heads`` its depth and
            attention heads.
        batch: windows per batch; ``eval_batch`` windows per evaluation batch.
        length: subwords of the longest window.
        head_per_token: bytes the head keeps per window position in training; ``head_decode``: transient bytes of
            decoding (both from the head's plan, :mod:`nerforge.modeling.plan`).
        plain_head: ``(head_per_token, head_decode, params)`` with the plain head, when it needs less (a refusal
            then names ``--head plain``).
        tags: tags of the head (for the message).
        half: bf16 activations (mixed precision).
    """

    params: int
    hidden: int
    ffn: int
    layers: int
    heads: int
    batch: int
    eval_batch: int
    length: int
    head_per_token: int
    head_decode: int
    tags: int
    plain_head: tuple[int, int, int] | None = None
    half: bool = False


@dataclass(frozen=True)
class MemoryEstimate:
    """A run's estimated peak, in bytes, by part."""

    weights: int
    activations: int
    head: int
    base: int

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.head + self.base

    def describe(self) -> str:
        return (
            f"about {gb(self.total)} at its peak (weights and optimizer {gb(self.weights)}, encoder activations "
            f"{gb(self.activations)}, head {gb(self.head)})"
        )


def gb(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 / 10 else f"{n / MB:.0f} MB"


def estimate(w: Workload, *, device: str = "cpu") -> MemoryEstimate:
    """The estimated peak of training ``w`` (see the module docstring). On CUDA the process base stays on the host."""
    value = 2 if w.half else 4
    tokens = w.batch * w.length
    per_layer = tokens * (9 * w.hidden + 2 * w.ffn) * value + 9 * w.batch * w.heads * w.length**2
    activations = int(ACTIVATION_SLACK * (w.layers * per_layer + 3 * tokens * w.hidden * value))
    head = tokens * w.head_per_token + w.head_decode
    return MemoryEstimate(
        weights=w.params * ADAM_BYTES_PER_PARAM,
        activations=activations,
        head=head,
        base=0 if device == "cuda" else PROCESS_BASE,
    )


def encoder_params(config: Any) -> int:
    """Parameters of a BERT-like encoder from its config (vocabulary, positions, layers)."""
    h = int(config.hidden_size)
    embeddings = (
        int(getattr(config, "vocab_size", 30522))
        + int(getattr(config, "max_position_embeddings", 512))
        + int(getattr(config, "type_vocab_size", 0) or 0)
    ) * h
    return embeddings + int(config.num_hidden_layers) * layer_params(config)


def layer_params(config: Any) -> int:
    """Parameters of one BERT-like transformer layer (attention, feed-forward, norms)."""
    h = int(config.hidden_size)
    f = _ffn(config)
    return 4 * h * h + 2 * h * f + 9 * h + f


def copied_layers(spec: Any) -> int:
    """Transformer layers a layered head adds to the encoder's (``model.head.own_top_layers``, a copy per layer of
    entities after the first)."""
    return int(spec.own_top_layers) * max(0, len(spec.layers) - 1)


def _ffn(config: Any) -> int:
    return int(
        getattr(config, "intermediate_size", None) or getattr(config, "hidden_dim", None) or 4 * int(config.hidden_size)
    )


def workload(config: Any, plan: Any, *, batch: int, eval_batch: int, length: int, half: bool) -> Workload:
    """The :class:`Workload` of training an encoder with ``config`` (a transformers config) under the head of
    ``plan`` (a :class:`~nerforge.modeling.plan.HeadPlan`)."""
    h = int(config.hidden_size)
    plain = plan.plain()
    copies = copied_layers(plan.spec)
    encoder = encoder_params(config)
    ours = (plan.training_bytes_per_token(h), plan.decode_bytes(),
            encoder + copies * layer_params(config) + plan.parameters(h))  # fmt: skip
    theirs = (plain.training_bytes_per_token(h), plain.decode_bytes(), encoder + plain.parameters(h))
    return Workload(
        params=ours[2],
        hidden=h,
        ffn=_ffn(config),
        layers=int(config.num_hidden_layers) + copies,
        heads=int(getattr(config, "num_attention_heads", 1) or 1),
        batch=batch,
        eval_batch=eval_batch,
        length=length,
        head_per_token=ours[0],
        head_decode=ours[1],
        tags=len(plan.tags),
        plain_head=theirs if theirs < ours else None,
        half=half,
    )


def available(device: str = "cpu") -> int | None:
    """Bytes this run may use (see the module docstring), or ``None`` when unknown or the check is off."""
    raw = os.environ.get(MEMORY_ENV, "").strip()
    if raw:
        try:
            mb = float(raw)
        except ValueError:
            raise UsageError(
                f"{MEMORY_ENV}={raw!r} is not a number of megabytes (0 turns the memory check off)"
            ) from None
        return None if mb <= 0 else int(mb * MB)
    if device == "cuda":
        import torch

        return int(torch.cuda.mem_get_info()[0])
    return _host_available()


def _host_available() -> int | None:
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text(encoding="ascii").strip()
            if limit != "max" and int(limit) < 2**60:
                found.append(int(limit) - int(Path(usage_file).read_text(encoding="ascii").strip()))
                break
        except (OSError, ValueError):
            continue
    return min(found) if found else None


def check_fits(w: Workload, *, device: str = "cpu", accumulation: int = 1) -> MemoryEstimate:
    """Refuse a run whose estimated peak exceeds what is available, naming the estimate and the setting that fits.

    Raises:
        UsageError: the estimate, what is available, and the largest ``--batch-size`` that fits (with the gradient
            accumulation that keeps the effective batch), or else ``--max-length`` / ``--head plain``.
    """
    est = estimate(w, device=device)
    free = available(device)
    if free is None or est.total <= free:
        return est
    where = "the GPU's free memory" if device == "cuda" else "the memory available"
    text = (
        f"training would need {est.describe()} for batches of {w.batch} windows of {w.length} subwords and "
        f"{w.tags} tags, and {where} is {gb(free)}"
    )
    batch = w.batch // 2
    while batch >= 1 and estimate(_with(w, batch=batch), device=device).total > free:
        batch //= 2
    if batch >= 1:
        steps = accumulation * -(-w.batch // batch)
        fix = (
            f"--batch-size {batch} fits (about {gb(estimate(_with(w, batch=batch), device=device).total)}; "
            f"--set training.gradient_accumulation_steps={steps} keeps the effective batch)"
        )
    else:
        shorter = _with(w, batch=1, length=max(8, w.length // 2))
        plain = (
            _with(
                w,
                batch=1,
                head_per_token=w.plain_head[0],
                head_decode=w.plain_head[1],
                params=w.plain_head[2],
                plain_head=None,
            )
            if w.plain_head
            else None
        )
        if estimate(shorter, device=device).total <= free:
            fix = f"--batch-size 1 --max-length {shorter.length} fits"
        elif plain is not None and estimate(plain, device=device).total <= free:
            fix = "--batch-size 1 --head plain fits"
        else:
            fix = "no batch size fits: a smaller model (--model) or a machine with more memory is needed"
    raise UsageError(f"{text}: {fix} ({MEMORY_ENV} sets the megabytes nerforge may use; 0 turns this check off)")


def _with(w: Workload, **changes: Any) -> Workload:
    from dataclasses import replace

    return replace(w, **changes)
