"""The model side of distillation: which layers a student keeps, cutting them out of a teacher (BERT, DistilBERT,
nerforge's own head with shape features and a CRF), CRF marginals, and the distillation loss."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from nerforge.errors import ModelError
from nerforge.modeling.crf import LinearChainCRF
from nerforge.modeling.head import HeadSpec
from nerforge.modeling.model import NerforgeTokenClassifier, head_config, load_head_model
from nerforge.modeling.student import (
    distillation_loss,
    ffn_pair,
    ffn_width,
    hidden_loss,
    layer_stack,
    model_crf,
    shrink,
    soft_targets,
    spread_layers,
)

TAGS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


@given(st.integers(1, 48).flatmap(lambda total: st.tuples(st.just(total), st.integers(1, total))))
def test_spread_layers_keeps_distinct_increasing_layers_ending_at_the_last(case: tuple[int, int]) -> None:
    total, keep = case
    layers = spread_layers(total, keep)
    assert len(layers) == keep and layers == sorted(set(layers))
    assert layers[-1] == total - 1 and 0 <= layers[0]
    if keep > 1:
        assert layers[0] == 0
    if keep == total:
        assert layers == list(range(total))


def test_spread_layers_refuses_impossible_sizes() -> None:
    with pytest.raises(ModelError, match="1 to 6"):
        spread_layers(6, 7)
    with pytest.raises(ModelError):
        spread_layers(6, 0)


def bert(layers: int = 4, *, num_labels: int = 5) -> nn.Module:
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=num_labels,
    )
    return BertForTokenClassification(config).eval()


def distilbert(layers: int = 4) -> nn.Module:
    from transformers import DistilBertConfig, DistilBertForTokenClassification

    torch.manual_seed(0)
    config = DistilBertConfig(
        vocab_size=50, dim=16, n_layers=layers, n_heads=2, hidden_dim=32, max_position_embeddings=32, num_labels=5
    )
    return DistilBertForTokenClassification(config).eval()


def head_model(layers: int = 4) -> NerforgeTokenClassifier:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    encoder = BertModel(
        BertConfig(
            vocab_size=50,
            hidden_size=16,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=32,
        ),
        add_pooling_layer=False,
    )
    model = NerforgeTokenClassifier(
        head_config(HeadSpec(features=("shape",), crf=True), encoder.config, TAGS), encoder=encoder
    )
    with torch.no_grad():
        model.crf.transitions_raw.normal_(0, 0.02)
        model.shape.linear.weight.normal_(0, 0.5)
    return model.eval()


def inputs() -> dict[str, torch.Tensor]:
    ids = torch.tensor([[2, 7, 9, 11, 3, 0], [2, 5, 6, 3, 0, 0]])
    return {"input_ids": ids, "attention_mask": (ids != 0).long()}


def manual_subset(model: nn.Module, keep: list[int]) -> nn.Module:
    """The teacher with its layer list replaced by the kept layers: what the student must compute."""
    clone = copy.deepcopy(model)
    name, _ = layer_stack(clone)
    parent_name, _, attr = name.rpartition(".")
    parent = clone.get_submodule(parent_name) if parent_name else clone
    layers = getattr(parent, attr)
    setattr(parent, attr, nn.ModuleList([layers[i] for i in keep]))
    return clone


@pytest.mark.parametrize("make", [bert, distilbert, head_model], ids=["bert", "distilbert", "nerforge-head"])
def test_shrink_keeps_the_chosen_layers_and_every_other_weight(make) -> None:
    teacher = make()
    name, total = layer_stack(teacher)
    assert total == 4
    with torch.no_grad():
        same = shrink(teacher, [0, 1, 2, 3]).eval()
        assert torch.allclose(same(**inputs()).logits, teacher(**inputs()).logits, atol=1e-5)
        student = shrink(teacher, [0, 3]).eval()
        expected = manual_subset(teacher, [0, 3])(**inputs()).logits
        assert torch.allclose(student(**inputs()).logits, expected, atol=1e-5)
        assert (student(**inputs()).logits - teacher(**inputs()).logits).abs().max() > 1e-4  # layers were dropped
    assert layer_stack(student) == (name, 2)
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in teacher.parameters())


def test_shrunk_head_model_saves_and_loads_as_itself(tmp_path) -> None:
    teacher = head_model()
    student = shrink(teacher, [1, 3]).eval()
    assert torch.equal(model_crf(student).transitions_raw, teacher.crf.transitions_raw)  # the CRF is copied
    student.save_pretrained(tmp_path)
    loaded = load_head_model(tmp_path, HeadSpec(features=("shape",), crf=True), TAGS)
    assert loaded.encoder.config.num_hidden_layers == 2
    with torch.no_grad():
        assert torch.allclose(loaded(**inputs()).logits, student(**inputs()).logits, atol=1e-6)


def kill_units(model: nn.Module, dead: int) -> None:
    """Zero the output weights of ``dead`` scattered hidden units in every feed-forward block: units that never matter."""
    name, _ = layer_stack(model)
    width = ffn_width(model)
    with torch.no_grad():
        for i, layer in enumerate(model.get_submodule(name)):
            _, down = ffn_pair(layer, 16, width)  # every test model here has hidden size 16
            units = torch.randperm(width, generator=torch.Generator().manual_seed(i))[:dead]
            layer.get_submodule(down).weight[:, units] = 0.0


@pytest.mark.parametrize("make", [bert, distilbert, head_model], ids=["bert", "distilbert", "nerforge-head"])
def test_a_narrower_feed_forward_keeps_the_units_that_matter(make) -> None:
    teacher = make()
    assert ffn_width(teacher) == 32
    kill_units(teacher, 20)
    with torch.no_grad():
        student = shrink(teacher, [0, 1, 2, 3], ffn_size=12).eval()  # exactly the 12 live units of each block
        assert ffn_width(student) == 12
        assert torch.allclose(student(**inputs()).logits, teacher(**inputs()).logits, atol=1e-5)
        fewer = shrink(teacher, [0, 3], ffn_size=8).eval()  # layers and live units dropped: it differs
        assert ffn_width(fewer) == 8 and layer_stack(fewer)[1] == 2
        assert (fewer(**inputs()).logits - teacher(**inputs()).logits).abs().max() > 1e-4
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in teacher.parameters())


def test_a_narrowed_head_model_saves_and_loads_as_itself(tmp_path) -> None:
    student = shrink(head_model(), [1, 3], ffn_size=10).eval()
    student.save_pretrained(tmp_path)
    loaded = load_head_model(tmp_path, HeadSpec(features=("shape",), crf=True), TAGS)
    assert loaded.encoder.config.intermediate_size == 10 and loaded.encoder.config.num_hidden_layers == 2
    with torch.no_grad():
        assert torch.allclose(loaded(**inputs()).logits, student(**inputs()).logits, atol=1e-6)


def test_feed_forward_sizes_out_of_range_are_refused() -> None:
    for size in (0, 33):
        with pytest.raises(ModelError, match="feed-forward size must be 1 to the teacher's 32"):
            shrink(bert(), [0, 1], ffn_size=size)


def test_shrink_refuses_bad_layer_lists() -> None:
    for keep in ([], [2, 1], [0, 4], [1, 1]):
        with pytest.raises(ModelError, match="increasing indices in 0..3"):
            shrink(bert(), keep)


def test_crf_marginals_match_enumeration_of_every_path() -> None:
    crf = LinearChainCRF(TAGS)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in (crf.start_raw, crf.end_raw, crf.transitions_raw):
            p.normal_(0, 0.01)
    emissions = torch.randn(2, 4, len(TAGS))
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    for temperature in (1.0, 3.0):
        got = crf.marginals(emissions, mask, temperature)
        start, end, trans = (x / temperature for x in crf.scores())
        for row in range(2):
            n = int(mask[row].sum())
            scores = {}
            for path in itertools.product(range(len(TAGS)), repeat=n):
                s = start[path[0]] + end[path[-1]] + sum(emissions[row, t, y] / temperature for t, y in enumerate(path))
                scores[path] = s + sum(trans[a, b] for a, b in itertools.pairwise(path))
            log_z = torch.logsumexp(torch.stack(list(scores.values())), 0)
            expected = torch.zeros(n, len(TAGS))
            for path, s in scores.items():
                for t, y in enumerate(path):
                    expected[t, y] += torch.exp(s - log_z)
            assert torch.allclose(got[row, :n], expected, atol=1e-5)


def test_distillation_loss_is_zero_for_the_teacher_itself_and_pulls_a_student_towards_it() -> None:
    torch.manual_seed(0)
    teacher_logits = torch.randn(2, 6, len(TAGS))
    mask = torch.tensor([[0, 1, 1, 1, 0, 0], [0, 1, 0, 1, 0, 0]], dtype=torch.bool)
    for crf in (None, LinearChainCRF(TAGS)):
        targets = soft_targets(teacher_logits, mask, 2.0, crf)[0].detach()
        assert float(distillation_loss(teacher_logits, mask, targets, 2.0, crf).detach()) == pytest.approx(
            0.0, abs=1e-5
        )
        student = torch.zeros_like(teacher_logits, requires_grad=True)
        optimiser = torch.optim.SGD([student], lr=1.0)
        losses = []
        for _ in range(30):
            optimiser.zero_grad()
            loss = distillation_loss(student, mask, targets, 2.0, crf)
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        assert losses[0] > 0.05 and losses[-1] < losses[0] / 5
        assert float(student.grad[~mask].abs().sum()) == 0.0  # positions that are not words get no gradient


def kept_states(model: nn.Module, keep: list[int]) -> torch.Tensor:
    """The model's outputs of the layers ``keep``, stacked as the distillation stores them: (batch, layers, seq, hidden)."""
    states = model(**inputs(), output_hidden_states=True).hidden_states
    return torch.stack([states[k + 1] for k in keep], dim=1)


def layers_that_transform() -> NerforgeTokenClassifier:
    """A head model whose layers change the vectors markedly (a freshly initialised tiny BERT's layers barely do)."""
    model = head_model()
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in model.encoder.encoder.named_parameters():
            if name.endswith("weight") and param.dim() == 2:
                param.normal_(0, 0.5)
    return model


def test_hidden_loss_is_zero_for_the_teacher_s_own_layers_and_ignores_padding() -> None:
    teacher = layers_that_transform()
    mask = inputs()["attention_mask"]
    with torch.no_grad():
        full = teacher(**inputs(), output_hidden_states=True).hidden_states[1:]
        assert float(hidden_loss(full, kept_states(teacher, [0, 1, 2, 3]), mask)) == pytest.approx(0.0, abs=1e-5)
        student = shrink(teacher, [0, 3]).eval()
        own = student(**inputs(), output_hidden_states=True).hidden_states[1:]
        target = kept_states(teacher, [0, 3])
        gap = float(hidden_loss(own, target, mask))
        assert gap > 1e-3  # layer 3 now reads layer 0's output: its vectors moved
        # the first kept layer reads the same embeddings as in the teacher: no gap there
        assert float(hidden_loss(own[:1], target[:, :1], mask)) == pytest.approx(0.0, abs=1e-5)
        noisy = target.clone()
        noisy[mask.bool().logical_not().unsqueeze(1).expand(-1, 2, -1)] = 7.0
        assert float(hidden_loss(own, noisy, mask)) == pytest.approx(gap, abs=1e-5)  # padding does not count
    with pytest.raises(ModelError, match="2 student layers against 4 teacher layers"):
        hidden_loss(own, kept_states(teacher, [0, 1, 2, 3]), mask)


def test_hidden_loss_pulls_a_student_s_layers_towards_its_teacher_s() -> None:
    teacher = layers_that_transform()
    with torch.no_grad():
        target = kept_states(teacher, [0, 3])
    student = shrink(teacher, [0, 3]).train()
    optimiser = torch.optim.Adam(student.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        optimiser.zero_grad()
        out = student(**inputs(), output_hidden_states=True)
        loss = hidden_loss(out.hidden_states[1:], target, inputs()["attention_mask"])
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] / 2, losses


def test_augmented_copies_swap_words_from_the_corpus() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from nerforge.training.distill import augmented_copies
    from nerforge.types import Example

    words = st.lists(st.text(alphabet="abcXYZ", min_size=1, max_size=4), min_size=1, max_size=8)

    @given(sentences=st.lists(words, min_size=1, max_size=6), copies=st.integers(0, 3), seed=st.integers(0, 99))
    def check(sentences: list[list[str]], copies: int, seed: int) -> None:
        examples = [Example(tuple(s), ("O",) * len(s)) for s in sentences]
        vocabulary = {w for s in sentences for w in s}
        out = augmented_copies(examples, copies, 0.5, seed=seed)
        assert len(out) == copies * len(examples)
        for k, ex in enumerate(out):
            source = examples[k % len(examples)]
            assert len(ex.tokens) == len(source.tokens) and set(ex.tokens) <= vocabulary and set(ex.tags) == {"O"}
        assert out == augmented_copies(examples, copies, 0.5, seed=seed)  # seeded
        assert [ex.tokens for ex in augmented_copies(examples, 1, 0.0, seed=seed)] == [ex.tokens for ex in examples]

    check()
    many = [Example(tuple(f"w{i}_{j}" for j in range(20)), ("O",) * 20) for i in range(20)]
    swapped = sum(
        a != b
        for ex, copy in zip(many, augmented_copies(many, 1, 0.3, seed=1), strict=True)
        for a, b in zip(ex.tokens, copy.tokens, strict=True)
    )
    assert 0.2 * 400 < swapped < 0.4 * 400  # about the rate asked for
