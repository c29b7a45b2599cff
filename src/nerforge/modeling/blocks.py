"""The building blocks of nerforge's own heads (:class:`nerforge.modeling.model.NerforgeTokenClassifier`): word shape
features, a layer's adapter, the span scorer, the layer mix's scale, the balanced sum of the layers' losses and the
encoder's stack of transformer layers."""

from __future__ import annotations

import torch
from torch import nn

from nerforge.modeling.features import NUM_SHAPE_FLAGS

# model.head.layer_mix: each layer's mixing weights are softmax(MIX_SCALE * parameter). AdamW moves a parameter by about
# the learning rate per step whatever its gradient's size, so at a fine-tuning rate (1e-4, a few thousand steps) a
# plain logit could not move the mix far from where it starts; scaled, it moves as at MIX_SCALE times the rate.
MIX_SCALE = 100.0
# ... and it starts with this logit on the last layer, 0 on the others (softmax weight 0.77 on the last of 7 states)
MIX_START = 3.0


class ShapeProjection(nn.Module):
    """Shape ids ``(batch, seq)`` → unpacked 0/1 flags → ``tanh(linear)`` of size ``dim``; 0 ids give zeros."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(NUM_SHAPE_FLAGS, dim, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        powers = 2 ** torch.arange(NUM_SHAPE_FLAGS, dtype=torch.long, device=ids.device)
        bits = torch.remainder(torch.div(ids.unsqueeze(-1), powers, rounding_mode="floor"), 2)
        return torch.tanh(self.linear(bits.to(self.linear.weight.dtype)))


class LayerAdapter(nn.Module):
    """A layer's own view of the shared encoder output (``model.head.layer_adapter``): ``x + up(gelu(down(norm(x))))``
    with ``up`` starting at zero, so a layered model starts as the shared-features head and each layer learns only
    what it needs apart from the others (the bottleneck adapter of Houlsby et al., 2019, at the head)."""

    def __init__(self, inputs: int, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(inputs)
        self.down = nn.Linear(inputs, width)
        self.up = nn.Linear(width, inputs)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return states + self.up(nn.functional.gelu(self.down(self.norm(states))))


class SpanScorer(nn.Module):
    """The span head's scorer: a span of words is ``gelu(start(first piece) + end(last piece) + width)``, scored
    for each class (none, then each type) by the model's ``classifier``. ``span_ends`` ``(batch, seq, width)`` gives,
    at each position that starts a word, the last piece of each of the next ``width`` words
    (:mod:`nerforge.modeling.span`); the result is ``(batch, seq, width, hidden)``, linear in the window's length."""

    def __init__(self, inputs: int, hidden: int, width: int) -> None:
        super().__init__()
        self.start = nn.Linear(inputs, hidden)
        self.end = nn.Linear(inputs, hidden)
        self.width = nn.Embedding(width, hidden)

    def forward(self, states: torch.Tensor, span_ends: torch.Tensor) -> torch.Tensor:
        batch, seq, width = span_ends.shape
        ends = self.end(states)
        index = span_ends.reshape(batch, seq * width, 1).expand(-1, -1, ends.shape[-1])
        at_end = torch.gather(ends, 1, index).reshape(batch, seq, width, ends.shape[-1])
        return nn.functional.gelu(self.start(states).unsqueeze(2) + at_end + self.width.weight)


def balanced_sum(losses: list[torch.Tensor], sizes: torch.Tensor, momentum: float = 0.9) -> torch.Tensor:
    """The layers' losses each divided by its running size (``sizes``, updated in place, detached) and multiplied
    by their mean size: every layer weighs the same in the gradient and the total keeps the scale of their sum.

    >>> import torch
    >>> sizes = torch.zeros(2)
    >>> round(float(balanced_sum([torch.tensor(8.0), torch.tensor(2.0)], sizes)), 4)  # first step: sizes = losses
    10.0
    >>> sizes.tolist()
    [8.0, 2.0]
    """
    stacked = torch.stack(losses)
    with torch.no_grad():
        now = stacked.detach()
        fresh = sizes <= 0
        sizes.copy_(torch.where(fresh, now, momentum * sizes + (1 - momentum) * now).clamp_min(1e-6))
    return (stacked / sizes * sizes.mean()).sum()


def find_layer_stack(model: nn.Module, total: int) -> tuple[str, nn.ModuleList] | None:
    """The qualified name and module of ``model``'s stack of ``total`` transformer layers: its first ``ModuleList``
    of that length (``encoder.layer`` for BERT-like models, ``transformer.layer`` for DistilBERT, ``layers`` for
    others); ``None`` where there is none (ALBERT, whose layers share their weights)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and total > 0 and len(module) == total:
            return name, module
    return None
