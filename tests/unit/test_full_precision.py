"""Dev scores during bf16 training are the saved float32 model's: ``full_precision`` bypasses accelerate's autocast
forward wrapper for the time of a score (issue 26: dev F1 computed one way during and after training)."""

from __future__ import annotations

import pytest
import torch

from nerforge.training.scoring import full_precision


def test_full_precision_bypasses_the_mixed_precision_wrapper_and_puts_it_back() -> None:
    accelerate = pytest.importorskip("accelerate")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 8))
    x = torch.randn(16, 64)
    with torch.no_grad():
        exact = model(x)
    prepared = accelerate.Accelerator(mixed_precision="bf16", cpu=True).prepare(model)
    if "_original_forward" not in prepared.__dict__:
        pytest.skip("this accelerate does not wrap forward for bf16 on CPU")
    with torch.no_grad():
        wrapped = prepared(x)
        with full_precision(prepared):
            inside = prepared(x)
        after = prepared(x)
    assert not torch.equal(wrapped, exact)  # the wrapper computes in bf16
    assert torch.equal(inside, exact)  # the score is the float32 model's
    assert torch.equal(after, wrapped)  # and training goes on in bf16
