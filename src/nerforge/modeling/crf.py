"""A linear-chain CRF over the labelled positions of a window (the first subword of each word it owns).

The chain of a window is the sequence of its positions whose label is not ``IGNORE_INDEX`` (training) or, at
prediction, the first subwords of the words the window owns, in order: context words, later subwords, special
tokens and words owned by another window are never part of it. So each word is decoded by exactly one window, as in
the softmax head.

Scores: ``start[y0] + sum_t emission[t, y_t] + sum_t transition[y_{t-1}, y_t] + end[y_last]``. IOB2 constraints are
hard on transitions: ``I-X`` may only follow ``B-X`` or ``I-X`` (a forbidden transition scores
:data:`FORBIDDEN`). The start is learned but not constrained: a window that is not the first of a long sentence may
begin inside an entity, and a leading ``I-X`` is repaired to ``B-X`` by the engine like any other invalid tag.

The parameters are stored divided by ``lr_scale`` (scaled back in every use), so that AdamW at an encoder's learning
rate (5e-5) moves them about ``lr_scale`` times faster, as a CRF freshly initialised at zero needs.

:func:`~nerforge.modeling.viterbi.viterbi_many` (numpy) is what the prediction engine runs after any backend (PyTorch or ONNX Runtime),
from the scores :meth:`LinearChainCRF.export_scores` returns (saved in ``nerforge.json`` under ``extra.crf``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nerforge.alignment import IGNORE_INDEX
from nerforge.modeling.viterbi import FORBIDDEN, allowed_transitions, viterbi_many

__all__ = ["FORBIDDEN", "LinearChainCRF", "allowed_transitions", "pack_positions", "viterbi_many"]

# Why not ``logsumexp(alpha[:, :, None] + trans)``: that builds a (batch, tags, tags) tensor at every position and
# autograd keeps each one, so a window's memory grew with the square of the tag count (349 XBRL types: 699 tags, 13 GB
# for 200 sentences, issue 27). The same sums as a matrix product in exponent space keep only (batch, tags) per
# position; the maxima taken out first keep every exponent at or below 0 (exact, not an approximation), and a sum
# that underflows (every allowed predecessor more than ~87 nats below the best) is floored at TINY instead of -inf.
TINY = 1e-30


def _forward_step(alpha: torch.Tensor, exp_trans: torch.Tensor, col_max: torch.Tensor) -> torch.Tensor:
    """``logsumexp_i(alpha[b, i] + trans[i, j])`` for every ``b, j``, with ``exp_trans = exp(trans - col_max)``."""
    top = alpha.max(dim=1, keepdim=True).values.detach()
    return top + col_max + torch.log((torch.exp(alpha - top) @ exp_trans).clamp_min(TINY))


def _backward_step(beta: torch.Tensor, exp_trans_t: torch.Tensor, row_max: torch.Tensor) -> torch.Tensor:
    """``logsumexp_j(trans[i, j] + beta[b, j])`` for every ``b, i``, with ``exp_trans_t = exp(trans - row_max).T``."""
    top = beta.max(dim=1, keepdim=True).values.detach()
    return top + row_max + torch.log((torch.exp(beta - top) @ exp_trans_t).clamp_min(TINY))


def _exp_transitions(trans: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(exp_trans, col_max, exp_trans_t, row_max)`` for :func:`_forward_step` and :func:`_backward_step`."""
    col_max = trans.max(dim=0).values.detach()
    row_max = trans.max(dim=1).values.detach()
    return torch.exp(trans - col_max), col_max, torch.exp(trans - row_max.unsqueeze(1)).T, row_max


def pack_positions(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Move the masked positions of each row to its front, in order.

    Args:
        values: ``(batch, seq, ...)``.
        mask: ``(batch, seq)`` bool.

    Returns:
        ``packed`` ``(batch, n, ...)``, ``chain_mask`` ``(batch, n)`` and ``index`` ``(batch, n)`` (the original
        position of each packed one), where ``n`` is the largest number of masked positions in a row (at least 1).
    """
    lengths = mask.sum(dim=1)
    n = max(int(lengths.max().item()) if lengths.numel() else 0, 1)
    index = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)[:, :n]
    gather = index.view(*index.shape, *([1] * (values.dim() - 2))).expand(-1, -1, *values.shape[2:])
    packed = values.gather(1, gather)
    chain_mask = torch.arange(n, device=mask.device).unsqueeze(0) < lengths.unsqueeze(1)
    return packed, chain_mask, index


class LinearChainCRF(nn.Module):
    """A CRF over ``len(tags)`` IOB2 tags (see the module docstring)."""

    def __init__(self, tags: Sequence[str], *, lr_scale: float = 100.0) -> None:
        super().__init__()
        n = len(tags)
        self.lr_scale = lr_scale
        self.start_raw = nn.Parameter(torch.zeros(n))
        self.end_raw = nn.Parameter(torch.zeros(n))
        self.transitions_raw = nn.Parameter(torch.zeros(n, n))
        # a plain array, not a buffer: transformers builds models on the meta device and loads only saved tensors
        self._allowed = allowed_transitions(tags)

    @property
    def num_tags(self) -> int:
        return int(self.start_raw.shape[0])

    def scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(start, end, transitions)`` with IOB2 constraints applied."""
        allowed = torch.from_numpy(self._allowed).to(self.transitions_raw.device)
        trans = torch.where(
            allowed, self.transitions_raw * self.lr_scale, torch.full_like(self.transitions_raw, FORBIDDEN)
        )
        return self.start_raw * self.lr_scale, self.end_raw * self.lr_scale, trans

    def export_scores(self) -> dict[str, Any]:
        """The scores as plain lists (for ``nerforge.json`` and numpy decoding)."""
        start, end, trans = (t.detach().float().cpu().numpy() for t in self.scores())
        return {"start": start.tolist(), "end": end.tolist(), "transitions": trans.tolist()}

    def log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Log-likelihood of ``tags`` for each chain.

        Args:
            emissions: ``(batch, n, num_tags)``.
            tags: ``(batch, n)`` tag ids (anything where ``mask`` is off).
            mask: ``(batch, n)`` bool, a prefix of each row (every chain must have at least one position).
        """
        with torch.autocast(emissions.device.type, enabled=False):  # bf16 matrix products would lose the sums
            return self._log_likelihood(emissions.float(), tags, mask)

    def _log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        start, end, trans = self.scores()
        tags = tags.masked_fill(~mask, 0)
        batch = torch.arange(emissions.shape[0], device=emissions.device)
        score = start[tags[:, 0]] + emissions[batch, 0, tags[:, 0]]
        alpha = start.unsqueeze(0) + emissions[:, 0]
        exp_trans, col_max, _, _ = _exp_transitions(trans)
        for t in range(1, emissions.shape[1]):
            on = mask[:, t]
            step = trans[tags[:, t - 1], tags[:, t]] + emissions[batch, t, tags[:, t]]
            score = score + step * on
            nxt = _forward_step(alpha, exp_trans, col_max) + emissions[:, t]
            alpha = torch.where(on.unsqueeze(1), nxt, alpha)
        last = tags.gather(1, (mask.sum(dim=1) - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        score = score + end[last]
        return score - torch.logsumexp(alpha + end.unsqueeze(0), dim=1)

    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Each position's tag distribution under the CRF (forward-backward), differentiable.

        Args:
            emissions: ``(batch, n, num_tags)``.
            mask: ``(batch, n)`` bool, a prefix of each row.
            temperature: every score (emissions, start, end, transitions) is divided by it; above 1 the
                distributions are softer (knowledge distillation).

        Returns:
            ``(batch, n, num_tags)`` probabilities; rows past a chain's end are meaningless (mask them).
        """
        with torch.autocast(emissions.device.type, enabled=False):  # bf16 matrix products would lose the sums
            return self._marginals(emissions.float() / temperature, mask, temperature)

    def _marginals(self, emissions: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
        start, end, trans = (x / temperature for x in self.scores())
        n = emissions.shape[1]
        exp_trans, col_max, exp_trans_t, row_max = _exp_transitions(trans)
        alphas = [start.unsqueeze(0) + emissions[:, 0]]
        for t in range(1, n):
            nxt = _forward_step(alphas[-1], exp_trans, col_max) + emissions[:, t]
            alphas.append(torch.where(mask[:, t].unsqueeze(1), nxt, alphas[-1]))
        ends = end.unsqueeze(0).expand_as(alphas[0])
        betas = [ends]
        for t in range(n - 2, -1, -1):
            nxt = _backward_step(emissions[:, t + 1] + betas[0], exp_trans_t, row_max)
            betas.insert(0, torch.where(mask[:, t + 1].unsqueeze(1), nxt, ends))
        log_z = torch.logsumexp(alphas[-1] + end.unsqueeze(0), dim=1)
        alpha, beta = torch.stack(alphas, dim=1), torch.stack(betas, dim=1)
        return torch.exp(alpha + beta - log_z.view(-1, 1, 1))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood over the windows of a batch, each a chain of its labelled positions."""
        mask = labels != IGNORE_INDEX
        rows = mask.any(dim=1)
        if not bool(rows.any()):
            return logits.sum() * 0.0
        emissions, chain_mask, _ = pack_positions(logits[rows], mask[rows])
        tags, _, _ = pack_positions(labels[rows], mask[rows])
        return -self.log_likelihood(emissions, tags, chain_mask).mean()
