"""The linear-chain CRF: log-likelihood and Viterbi against brute force over all paths, IOB2 constraints."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from nerforge.alignment import IGNORE_INDEX
from nerforge.modeling.crf import FORBIDDEN, LinearChainCRF, allowed_transitions, pack_positions, viterbi_many

TAGS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def random_crf(seed: int) -> LinearChainCRF:
    torch.manual_seed(seed)
    crf = LinearChainCRF(TAGS, lr_scale=1.0)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    return crf


def path_score(crf: LinearChainCRF, emissions: torch.Tensor, path: tuple[int, ...]) -> float:
    start, end, trans = (t.detach().double() for t in crf.scores())
    s = start[path[0]] + end[path[-1]] + sum(emissions[t, y] for t, y in enumerate(path))
    s += sum(trans[a, b] for a, b in zip(path, path[1:], strict=False))
    return float(s)


def test_allowed_transitions_forbid_i_after_o_and_other_types() -> None:
    allowed = allowed_transitions(TAGS)
    i_loc = TAGS.index("I-LOC")
    assert [TAGS[i] for i in range(len(TAGS)) if allowed[i, i_loc]] == ["B-LOC", "I-LOC"]
    assert allowed[:, TAGS.index("B-PER")].all() and allowed[:, 0].all()
    _, _, trans = LinearChainCRF(TAGS).scores()
    assert trans[0, i_loc] == FORBIDDEN and trans[TAGS.index("I-PER"), i_loc] == FORBIDDEN


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_likelihood_equals_brute_force(seed: int) -> None:
    crf = random_crf(seed)
    torch.manual_seed(seed + 10)
    lengths = [3, 1, 2]
    emissions = torch.randn(3, 3, len(TAGS), dtype=torch.float64)
    tags = torch.tensor([[1, 2, 0], [3, 0, 0], [0, 3, 0]])
    mask = torch.arange(3).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    got = crf.log_likelihood(emissions, tags, mask)
    for row, n in enumerate(lengths):
        scores = [path_score(crf, emissions[row], p) for p in itertools.product(range(len(TAGS)), repeat=n)]
        log_z = float(torch.logsumexp(torch.tensor(scores), dim=0))
        gold = path_score(crf, emissions[row], tuple(tags[row, :n].tolist()))
        assert float(got[row].detach()) == pytest.approx(gold - log_z, abs=1e-4)


def one(emissions: np.ndarray, start: np.ndarray, end: np.ndarray, trans: np.ndarray) -> np.ndarray:
    return viterbi_many([emissions], start, end, trans)[0]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_viterbi_equals_brute_force_argmax(seed: int) -> None:
    crf = random_crf(seed)
    rng = np.random.default_rng(seed)
    emissions = rng.normal(size=(3, 4, len(TAGS))) * 3
    lengths = [4, 2, 1]
    start, end, trans = (t.detach().double().numpy() for t in crf.scores())
    for row, n in enumerate(lengths):
        em = torch.from_numpy(emissions[row])
        best = max(itertools.product(range(len(TAGS)), repeat=n), key=lambda p: path_score(crf, em, p))
        assert tuple(one(emissions[row, :n], start, end, trans).tolist()) == best


def chain_score(emissions: np.ndarray, start: np.ndarray, end: np.ndarray, trans: np.ndarray, path: tuple) -> float:
    score = start[path[0]] + end[path[-1]] + sum(emissions[t, y] for t, y in enumerate(path))
    return float(score + sum(trans[a, b] for a, b in zip(path, path[1:], strict=False)))


@given(st.integers(0, 2**32 - 1), st.lists(st.integers(0, 4), max_size=6), st.booleans())
def test_viterbi_many_finds_each_chain_s_best_path(seed: int, lengths: list[int], ties: bool) -> None:
    """Chains of different lengths decoded together: each gets a path scoring the best of all its paths (brute force;
    with small integer scores, ties are common and any best path is right)."""
    rng = np.random.default_rng(seed)
    k = len(TAGS)

    def draw(*shape: int) -> np.ndarray:
        return rng.integers(-2, 3, size=shape).astype(np.float64) if ties else rng.normal(size=shape) * 3

    start, end, trans = draw(k), draw(k), draw(k, k)
    trans[~allowed_transitions(TAGS)] = FORBIDDEN
    chains = [draw(n, k) for n in lengths]
    got = viterbi_many(chains, start, end, trans)
    assert [len(g) for g in got] == lengths
    for chain, path in zip(chains, got, strict=True):
        if len(chain):
            best = max(chain_score(chain, start, end, trans, p) for p in itertools.product(range(k), repeat=len(chain)))
            assert chain_score(chain, start, end, trans, tuple(path.tolist())) == pytest.approx(best)


def test_viterbi_never_puts_i_after_o() -> None:
    crf = LinearChainCRF(TAGS)
    emissions = np.zeros((3, len(TAGS)))
    emissions[0, 0] = 5.0  # O
    emissions[1, TAGS.index("I-LOC")] = 8.0  # I-LOC wants to follow O
    start, end, trans = (t.detach().double().numpy() for t in crf.scores())
    path = [TAGS[i] for i in one(emissions, start, end, trans)]
    # O then I-LOC is forbidden, so the best allowed path trades the O at 0 for B-LOC to keep I-LOC (0 + 8 > 5 + 0)
    assert path[:2] == ["B-LOC", "I-LOC"]
    emissions[1, TAGS.index("I-LOC")] = 4.0  # now keeping O (5) beats B-LOC, I-LOC (4): I-LOC must go
    path = [TAGS[i] for i in one(emissions, start, end, trans)]
    assert path[0] == "O" and path[1] != "I-LOC"
    assert one(np.zeros((0, len(TAGS))), start, end, trans).shape == (0,)


def test_loss_uses_only_labelled_positions() -> None:
    crf = random_crf(5)
    torch.manual_seed(0)
    logits = torch.randn(2, 6, len(TAGS))
    labels = torch.full((2, 6), IGNORE_INDEX)
    labels[0, [1, 2, 4]] = torch.tensor([1, 2, 0])
    labels[1, [3]] = torch.tensor([3])
    packed, chain, index = pack_positions(logits, labels != IGNORE_INDEX)
    assert index[0].tolist() == [1, 2, 4] and chain.tolist() == [[True] * 3, [True, False, False]]
    assert torch.equal(packed[1, 0], logits[1, 3])
    expected = -crf.log_likelihood(packed, pack_positions(labels, labels != IGNORE_INDEX)[0], chain).mean()
    assert torch.allclose(crf.loss(logits, labels), expected)
    other = logits.clone()
    other[:, 0] += 100.0  # an unlabelled position changes nothing
    assert torch.allclose(crf.loss(other, labels), expected)


def test_loss_is_differentiable_and_zero_rows_are_skipped() -> None:
    crf = LinearChainCRF(TAGS)
    logits = torch.randn(2, 4, len(TAGS), requires_grad=True)
    labels = torch.full((2, 4), IGNORE_INDEX)
    labels[0, 1], labels[0, 2] = 1, 2
    loss = crf.loss(logits, labels)
    loss.backward()
    assert torch.isfinite(loss) and crf.transitions_raw.grad is not None and logits.grad is not None
    assert float(crf.loss(logits, torch.full((2, 4), IGNORE_INDEX)).detach()) == 0.0


@pytest.mark.parametrize("scale", [1.0, 60.0])
def test_marginals_equal_brute_force_even_with_extreme_scores(scale: float) -> None:
    """Forward-backward in exponent space matches the sum over every path, also when scores are so far apart that
    the smaller terms underflow float32 (the maxima are taken out before each exponent)."""
    crf = random_crf(7)
    torch.manual_seed(3)
    emissions = torch.randn(1, 3, len(TAGS)) * scale
    got = crf.marginals(emissions, torch.ones(1, 3, dtype=torch.bool))
    assert torch.isfinite(got).all()
    paths = list(itertools.product(range(len(TAGS)), repeat=3))
    scores = torch.tensor([path_score(crf, emissions[0].double(), p) for p in paths], dtype=torch.float64)
    probs = torch.softmax(scores, dim=0)
    want = torch.zeros(3, len(TAGS), dtype=torch.float64)
    for p, prob in zip(paths, probs, strict=True):
        for t, y in enumerate(p):
            want[t, y] += prob
    assert torch.allclose(got[0].double(), want, atol=1e-4)
    ll = crf.log_likelihood(emissions, got[0].argmax(dim=1).unsqueeze(0), torch.ones(1, 3, dtype=torch.bool))
    assert torch.isfinite(ll).all() and float(ll.detach()) <= 1e-5


MEMORY_PROBE = """
import resource, torch
from nerforge.modeling.crf import LinearChainCRF
tags = ["O"] + [f"{p}-T{k}" for k in range(349) for p in "BI"]  # 699 tags, as XBRL data with 349 types has
crf = LinearChainCRF(tags)
torch.manual_seed(0)
logits = torch.randn(8, 48, len(tags), requires_grad=True)
labels = torch.randint(0, len(tags), (8, 48))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
crf.loss(logits, labels).backward()
crf.marginals(logits, torch.ones(8, 48, dtype=torch.bool), 2.0).sum().backward()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_crf_memory_grows_linearly_with_the_tag_count() -> None:
    """Issue 27: with 699 tags a batch of 8 windows of 48 words took over 2 GB (a (batch, tags, tags) tensor kept
    for every position); it must stay far below that."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, check=True, timeout=300)
    grown_mb = int(out.stdout.strip().splitlines()[-1])
    assert grown_mb < 300, f"the CRF's loss and marginals grew the process by {grown_mb} MB"


def test_viterbi_in_groups_finds_the_same_paths_and_bounds_each_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chains are decoded in groups that fit ``STEP_BYTES`` (300 chains of 597 tags took 850 MB per step at once)."""
    from nerforge.modeling import viterbi

    rng = np.random.default_rng(3)
    n = len(TAGS)
    chains = [rng.normal(size=(int(k), n)) for k in rng.integers(0, 9, size=40)]
    start, end, trans = (
        rng.normal(size=n),
        rng.normal(size=n),
        np.where(allowed_transitions(TAGS), rng.normal(size=(n, n)), FORBIDDEN),
    )
    together = viterbi_many(chains, start, end, trans)
    monkeypatch.setattr(viterbi, "STEP_BYTES", 3 * 8 * n * n * 3)  # three chains per group
    assert viterbi.group_size(n) == 3
    grouped = viterbi.viterbi_many(chains, start, end, trans)
    assert [p.tolist() for p in grouped] == [p.tolist() for p in together]
    assert viterbi.group_size(597) * 3 * 8 * 597 * 597 <= 64 * 2**20 or viterbi.group_size(597) == 1
