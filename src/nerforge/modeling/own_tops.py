"""``model.head.own_top_layers``: in a layered model, every layer of entities after the first reads its own copy of
the encoder's top transformer layers, trained for that layer alone, while the layers below stay shared.

The copies start as the pretrained top layers (a deep copy when the model is built for fine-tuning; from the saved
weights when it is loaded). One encoder pass serves every layer: a forward pre-hook on the first copied layer of the
shared stack records what that layer is called with (its input and the attention mask in whatever form the
architecture prepared it, rotary position embeddings included), and each copy is called with the same. Any
architecture whose transformer layers sit in one ``ModuleList`` of ``num_hidden_layers`` modules and whose output is
its last layer's output works; one that changes the stack's output afterwards (a final norm, as ModernBERT) is refused
with a one-line error instead of being fed a representation it never saw.

Tried for SkillSpan's knowledge layer after a per-layer adapter and layer mix (``layer_adapter``, ``layer_mix``) left
it behind its flat model: a top of its own left it there too (docs/benchmarks.md, *Layered models*); giving that layer
more of the loss (``layer_weights``) is what moved it.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nerforge.errors import ModelError
from nerforge.modeling.blocks import find_layer_stack


def encoder_stack(encoder: nn.Module) -> tuple[str, nn.ModuleList]:
    """The qualified name and module of the encoder's transformer layers
    (:func:`~nerforge.modeling.blocks.find_layer_stack` of ``config.num_hidden_layers`` layers).

    Raises:
        ModelError: no such list (e.g. ALBERT, whose layers share their weights).
    """
    total = int(getattr(getattr(encoder, "config", None), "num_hidden_layers", 0) or 0)
    found = find_layer_stack(encoder, total)
    if found is not None:
        return found
    raise ModelError(
        f"model.head.own_top_layers: cannot find the {total} transformer layers of {type(encoder).__name__} "
        "(an encoder with one list of layers is needed); train without it"
    )


def _hidden(output: Any) -> Any:
    """A transformer layer's output hidden states, whether it returns them alone or first in a tuple."""
    return output[0] if isinstance(output, (tuple, list)) else output


class OwnTopLayers(nn.Module):
    """``copies`` copies of the top ``count`` layers of ``encoder``'s stack, and the encoder pass that feeds them.

    Raises:
        ModelError: the stack cannot be found, or ``count`` is not between 1 and its length.
    """

    def __init__(self, encoder: nn.Module, count: int, copies: int) -> None:
        super().__init__()
        # the stack's name, not the module: held as a submodule here, the encoder's layers would be saved twice
        self.stack_name, stack = encoder_stack(encoder)
        if not 1 <= count <= len(stack):
            raise ModelError(
                f"model.head.own_top_layers = {count}, but the encoder has {len(stack)} transformer layers "
                f"(choose 1 to {len(stack)})"
            )
        self.first = len(stack) - count
        self.copies = nn.ModuleList(
            nn.ModuleList(copy.deepcopy(stack[i]) for i in range(self.first, len(stack))) for _ in range(copies)
        )

    def check(self, encoder: nn.Module) -> None:
        """Run the encoder once on a two-token input, so an encoder this option cannot serve is refused when the
        model is built rather than at the first training step.

        Raises:
            ModelError: as :meth:`encode`.
        """
        ids = torch.tensor([[1, 2]], device=next(encoder.parameters()).device)
        was_training = encoder.training
        encoder.eval()
        try:
            with torch.no_grad():
                self.encode(encoder, input_ids=ids, attention_mask=torch.ones_like(ids))
        finally:
            encoder.train(was_training)

    def encode(self, encoder: nn.Module, **inputs: Any) -> tuple[Any, list[torch.Tensor]]:
        """Run ``encoder`` on ``inputs`` once: its output, and each entity layer's last hidden states (the shared
        encoder's for the first, each copy's for the others), ``(batch, seq, hidden)`` each.

        Raises:
            ModelError: the encoder's output is not its last layer's (a final norm or projection after the stack).
        """
        stack = encoder.get_submodule(self.stack_name)  # found once when built: no module search per pass
        seen: dict[str, Any] = {}
        # the hooks sit on modules that another thread may run meanwhile (one model, several threads tagging):
        # only this thread's calls are recorded
        me = threading.get_ident()

        def called(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if threading.get_ident() == me:
                seen["call"] = (args, dict(kwargs))

        def returned(_module: nn.Module, _args: Any, _kwargs: Any, output: Any) -> None:
            if threading.get_ident() == me:
                seen["output"] = _hidden(output)

        hooks = [
            stack[self.first].register_forward_pre_hook(called, with_kwargs=True),
            stack[-1].register_forward_hook(returned, with_kwargs=True),
        ]
        try:
            encoded = encoder(**inputs)
        finally:
            for hook in hooks:
                hook.remove()
        if "call" not in seen or seen.get("output") is not encoded.last_hidden_state:
            raise ModelError(
                f"model.head.own_top_layers: the output of {type(encoder).__name__} is not its last transformer "
                "layer's (it is normed or projected after the layers); train this encoder without it"
            )
        args, kwargs = seen["call"]
        return encoded, [encoded.last_hidden_state, *(_run(layers, args, kwargs) for layers in self.copies)]


def _run(layers: Sequence[nn.Module], args: Sequence[Any], kwargs: Mapping[str, Any]) -> torch.Tensor:
    """Call ``layers`` in turn as the shared stack called its first copied layer: the hidden states replaced by each
    layer's output, every other argument (masks, position embeddings) the same."""
    rest = list(args[1:])
    options = dict(kwargs)
    if args:
        hidden = args[0]
    else:  # called with keywords only: the hidden states are the first of them, whatever their name
        hidden = options.pop("hidden_states") if "hidden_states" in options else options.pop(next(iter(options)))
    for layer in layers:
        hidden = _hidden(layer(hidden, *rest, **options))
    return hidden
