"""The prediction engine: windows, length-sorted batches, input order, empty words, IOB2 repair, no truncation."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from conftest import build_tiny_token_model
from nerforge.alignment import special_tokens, windows_for, word_pieces
from nerforge.errors import ModelError, UsageError
from nerforge.model_dir import ModelMeta
from nerforge.prediction.engine import Engine, WordPrediction, batches_by_length, decode_words, pad_batch, softmax
from nerforge.prediction.tagger import Tagger
from nerforge.types import LabelSet

TAGS = list(LabelSet.from_types(["LOC", "ORG", "PER"]).tags)  # O B-LOC I-LOC B-ORG I-ORG B-PER I-PER
VOCAB = (
    "the a of in on at paris london acme corp ann smith bank river blue green data model python java team "
    "works lives near with from jobs engineer north south city street 2024 42 , . ; ( ) - un believ able"
).split()


@pytest.fixture(scope="module", autouse=True)
def _cpu_threads():
    """Torch threads = idle cores (a loaded 2-core machine otherwise runs tiny models ten times slower)."""
    import torch

    from nerforge.threads import set_torch_threads

    before = torch.get_num_threads()
    set_torch_threads(None)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_token_model(tiny_encoder, tmp_path_factory.mktemp("model"), max_length=16, stride=4)


@pytest.fixture(scope="module")
def tagger(model_dir: Path) -> Tagger:
    return Tagger.load(model_dir, batch_size=4, progress=False)


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def _words(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(VOCAB) for _ in range(n)]


def _types(tags: tuple[str, ...]) -> list[str]:
    return [t[2:] if t != "O" else "O" for t in tags]


class PieceBackend:
    """A fake model: each piece id maps to fixed logits, whatever its context; records the batches it sees."""

    def __init__(self, tokenizer, rules: dict[str, str]) -> None:
        self.by_id = {tokenizer.convert_tokens_to_ids(piece): TAGS.index(tag) for piece, tag in rules.items()}
        self.batches: list[list[int]] = []

    def logits(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        input_ids, attention_mask = inputs["input_ids"], inputs["attention_mask"]
        self.batches.append(attention_mask.sum(axis=1).tolist())
        out = np.zeros((*input_ids.shape, len(TAGS)), dtype=np.float32)
        out[..., 0] = 5.0
        for (b, t), piece in np.ndenumerate(input_ids):
            if int(piece) in self.by_id:
                out[b, t, self.by_id[int(piece)]] = 9.0
        return out


# -- windows -------------------------------------------------------------------------------------------------------


def test_engine_window_reassembly_matches_each_window_run_alone(tagger: Tagger, tokenizer) -> None:
    words = _words(70, seed=1)
    whole = tagger.predict_words([words])[0]
    assert len(whole) == len(words)
    windows, stats = windows_for(word_pieces(tokenizer, [words]), 16, 4, special_tokens(tokenizer))
    assert stats.windowed_examples == 1 and len(windows) > 3
    alone = tagger.predict_words([words[w.start : w.end] for w in windows])
    context_matters = False
    for w, pred in zip(windows, alone, strict=True):
        for i in range(w.start, w.end):
            local = i - w.start
            if w.own_start <= i < w.own_end:
                assert _types(whole.tags)[i] == _types(pred.tags)[local], f"word {i} in window {w}"
                assert whole.scores[i] == pytest.approx(pred.scores[local], abs=1e-4), f"word {i} in window {w}"
            elif abs(whole.scores[i] - pred.scores[local]) > 1e-3:
                context_matters = True
    # the same word seen by a window that does not own it scores differently: a wrong window would be caught
    assert context_matters


def test_engine_long_text_tags_every_word_without_truncation(model_dir: Path) -> None:
    tagger = Tagger.load(model_dir, batch_size=64, progress=False)
    text = " ".join(_words(5000, seed=2))
    words = [w.text for w in tagger.words(text)]
    assert len(words) == 5000
    [prediction] = tagger.predict_words([words])
    assert len(prediction.tags) == len(prediction.scores) == len(words)
    assert all(0.0 < s <= 1.0 for s in prediction.scores)
    assert {t[2:] for t in prediction.tags if t != "O"} <= {"LOC", "ORG", "PER"}
    assert tagger.engine.stats.windowed_examples == 1 and tagger.engine.stats.windows > 300


def test_engine_long_text_finds_entities_all_along_it(tokenizer) -> None:
    meta = ModelMeta(tags=TAGS, max_length=24, stride=6)
    tagger = Tagger.from_backend(PieceBackend(tokenizer, {"paris": "B-LOC"}), tokenizer, meta, progress=False)
    words = ["Paris" if i % 100 == 37 else w.replace("paris", "london") for i, w in enumerate(_words(5000, seed=3))]
    text = "  ".join(words)
    entities = tagger.predict_text(text)
    expected = [i for i, w in enumerate(words) if w == "Paris"]
    assert len(entities) == len(expected) == 50
    assert all(e.text == "Paris" == text[e.start : e.end] and e.label == "LOC" for e in entities)
    assert entities[-1].start > 0.95 * len(text)


def test_tagger_tags_a_long_text_one_bounded_segment_at_a_time(tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    from nerforge.prediction import engine as engine_module
    from nerforge.prediction.segments import SEGMENT_CHARS

    monkeypatch.setattr(engine_module, "CHUNK_WORDS", 2_000)
    meta = ModelMeta(tags=TAGS, max_length=24, stride=6)
    tagger = Tagger.from_backend(PieceBackend(tokenizer, {"paris": "B-LOC"}), tokenizer, meta, progress=False)
    rng = random.Random(5)
    words = [w.replace("paris", "london") for w in _words(40_000, seed=6)]
    for i in rng.sample(range(len(words)), 300):
        words[i] = "Paris"
    text = " ".join(words) + " 🎉 Paris"
    assert len(text) > 8 * SEGMENT_CHARS
    tokenized: list[int] = []
    chunk_words: list[int] = []
    tokenize, predict_chunk = tagger._tokenize, tagger.engine.predict_chunk
    monkeypatch.setattr(tagger, "_tokenize", lambda t: tokenized.append(len(t)) or tokenize(t))
    monkeypatch.setattr(
        tagger.engine,
        "predict_chunk",
        lambda chunk, **kw: chunk_words.append(sum(map(len, chunk))) or predict_chunk(chunk, **kw),
    )
    [entities] = tagger.predict([text])
    # no step holds the whole text: each tokenizer call sees one segment, each engine chunk a bounded number of words
    assert max(tokenized) <= SEGMENT_CHARS and len(tokenized) >= 9
    assert max(chunk_words) <= 2_000 + SEGMENT_CHARS and len(chunk_words) >= 9
    # and nothing is lost at the cuts: every Paris is found where it is, the last one after an emoji
    assert [e.start for e in entities] == [i for i in range(len(text)) if text.startswith("Paris", i)]
    assert all(text[e.start : e.end] == e.text == "Paris" and e.label == "LOC" for e in entities)
    assert len(entities) == 301
    # the scored view joins the segments back: the words and tags of the whole text, offsets into it
    [(whole, scored_words, prediction)] = list(tagger.iter_predict_scored([text]))
    assert whole == text and scored_words == tagger.words(text)
    assert len(prediction.tags) == len(scored_words) and prediction.tags.count("B-LOC") == 301


def test_engine_progress_counts_the_callers_units(tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A text cut into segments is one step of the bar, not one per segment."""
    import tqdm.auto

    steps: list[int] = []

    class Bar:
        def __init__(self, *args, **kwargs) -> None:
            self.n = 0

        def update(self, k: int) -> None:
            self.n += k
            steps.append(k)

        def close(self) -> None:
            pass

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    meta = ModelMeta(tags=TAGS, max_length=24, stride=6)
    tagger = Tagger.from_backend(PieceBackend(tokenizer, {}), tokenizer, meta, progress=True, chunk_size=2)
    long = " ".join(_words(12_000, seed=7))
    assert len(tagger.predict(["short one", long, "another", long])) == 4
    assert sum(steps) == 4 and all(k >= 0 for k in steps)


# -- order and batching --------------------------------------------------------------------------------------------


def test_engine_results_come_back_in_input_order(tagger: Tagger, model_dir: Path) -> None:
    rng = random.Random(4)
    examples = [_words(rng.choice([0, 1, 2, 5, 9, 14, 30, 45]), seed=i) for i in range(23)]
    single = Tagger.load(model_dir, batch_size=1, chunk_size=1, progress=False)
    one_by_one = [single.predict_words([ex])[0] for ex in examples]
    batched = Tagger.load(model_dir, batch_size=3, chunk_size=5, progress=False).predict_words(examples)
    assert [len(p) for p in batched] == [len(ex) for ex in examples]
    for a, b in zip(one_by_one, batched, strict=True):
        assert a.tags == b.tags
        assert a.scores == pytest.approx(b.scores, abs=1e-4)


def test_engine_batches_are_sorted_by_length(tokenizer) -> None:
    backend = PieceBackend(tokenizer, {})
    meta = ModelMeta(tags=TAGS, max_length=64, stride=8)
    engine = Engine(backend, tokenizer, meta, batch_size=4, chunk_size=1000)
    examples = [_words(n, seed=n) for n in (3, 40, 1, 17, 8, 25, 2, 33, 11, 5)]
    list(engine.predict(examples))
    lengths = [n for batch in backend.batches for n in batch]
    assert lengths == sorted(lengths, reverse=True)
    assert [len(b) for b in backend.batches] == [4, 4, 2]


def test_engine_streams_in_chunks(tokenizer) -> None:
    backend = PieceBackend(tokenizer, {})
    engine = Engine(backend, tokenizer, ModelMeta(tags=TAGS, max_length=64, stride=8), batch_size=100, chunk_size=3)
    consumed: list[int] = []

    def source():
        for i in range(7):
            consumed.append(i)
            yield ["word"] * (i + 1)

    results = engine.predict(source())
    first = next(results)
    assert len(first) == 1 and consumed == [0, 1, 2]  # only the first chunk has been read
    assert [len(p) for p in [first, *results]] == [1, 2, 3, 4, 5, 6, 7]
    assert len(backend.batches) == 3


# -- empty inputs, empty words, IOB2 repair --------------------------------------------------------------------------


def test_engine_empty_and_whitespace_texts(tagger: Tagger) -> None:
    assert tagger.predict(["", "   ", "\n\t \r\n"]) == [[], [], []]
    assert tagger.predict_text("") == []
    assert tagger.predict([]) == []
    preds = tagger.predict_words([[], ["Paris"], []])
    assert [len(p) for p in preds] == [0, 1, 0]
    assert preds[0] == WordPrediction((), ())


def test_engine_words_without_pieces_take_neighbour_tags(tokenizer) -> None:
    backend = PieceBackend(tokenizer, {"new": "B-LOC", "york": "I-LOC", "paris": "B-LOC"})
    tagger = Tagger.from_backend(backend, tokenizer, ModelMeta(tags=TAGS, max_length=16, stride=4))
    inside, between = tagger.predict_words([["new", "\x00", "york"], ["paris", "\x00", "paris"]])
    assert inside.tags == ("B-LOC", "I-LOC", "I-LOC")
    assert inside.scores[1] == inside.scores[0] > 0.9
    assert between.tags == ("B-LOC", "O", "B-LOC")
    assert between.scores[1] == 0.0


def test_engine_repairs_tags_into_valid_iob2(tokenizer) -> None:
    backend = PieceBackend(tokenizer, {"york": "I-LOC", "team": "I-ORG"})
    tagger = Tagger.from_backend(backend, tokenizer, ModelMeta(tags=TAGS, max_length=16, stride=4))
    [pred] = tagger.predict_words([["york", "york", "the", "york", "team"]])
    assert pred.tags == ("B-LOC", "I-LOC", "O", "B-LOC", "B-ORG")


def test_engine_rejects_logits_of_the_wrong_shape(tokenizer) -> None:
    class Wrong:
        def logits(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
            return np.zeros((*inputs["input_ids"].shape, 3), dtype=np.float32)

    tagger = Tagger.from_backend(Wrong(), tokenizer, ModelMeta(tags=TAGS, max_length=16, stride=4))
    with pytest.raises(ModelError, match="7 tags"):
        tagger.predict_words([["a"]])


def test_engine_predict_rejects_a_bare_string(tagger: Tagger) -> None:
    with pytest.raises(UsageError, match="predict_text"):
        tagger.predict("Paris")  # type: ignore[arg-type]


# -- pure helpers --------------------------------------------------------------------------------------------------


def test_engine_batches_by_length_longest_first() -> None:
    assert batches_by_length([3, 9, 1, 7, 7], 2) == [[1, 3], [4, 0], [2]]
    assert batches_by_length([], 4) == []
    with pytest.raises(ValueError):
        batches_by_length([1], 0)


def test_engine_pad_batch() -> None:
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == np.int64


def test_engine_softmax_is_stable() -> None:
    p = softmax(np.array([[1000.0, 1000.0], [0.0, -1000.0]]))
    assert p.tolist() == [[0.5, 0.5], [1.0, 0.0]]


def test_engine_decode_words_fills_and_repairs() -> None:
    pred = decode_words([2, -1, 2, 0, -1], [0.9, 0.0, 0.8, 0.7, 0.0], TAGS)
    assert pred.tags == ("B-LOC", "I-LOC", "I-LOC", "O", "O")
    assert pred.scores == (0.9, 0.9, 0.8, 0.7, 0.0)
