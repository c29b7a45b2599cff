"""Data splits: several files per split, a seeded split carved out of train, seeded samples, dev used as train."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nerforge.config import load_config
from nerforge.data.splits import carve, describe_source, read_data_splits, sample, units_of
from nerforge.errors import ConfigError
from nerforge.training.run import read_splits
from nerforge.types import Example


def make_examples(n: int, *, docs: int | None = None, source: str = "a.conll") -> list[Example]:
    """``n`` one-token sentences ``s0, s1, ...``; with ``docs``, spread over that many documents in order."""
    out = []
    for i in range(n):
        doc = None if docs is None else str(i * docs // n)
        out.append(Example((f"s{i}",), ("B-X",) if i % 3 == 0 else ("O",), doc_id=doc, source=source, line=i + 1))
    return out


def tokens(examples: list[Example]) -> list[str]:
    return [ex.tokens[0] for ex in examples]


def write_conll(path: Path, sentences: list[list[tuple[str, str]]]) -> Path:
    path.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in s) for s in sentences) + "\n", encoding="utf-8")
    return path


def test_splits_carve_same_seed_same_split() -> None:
    examples = make_examples(50)
    a = carve(examples, dev=0.1, test=0.2, seed=13, by="sentence")
    b = carve(examples, dev=0.1, test=0.2, seed=13, by="sentence")
    assert {k: tokens(v) for k, v in a.items()} == {k: tokens(v) for k, v in b.items()}
    c = carve(examples, dev=0.1, test=0.2, seed=14, by="sentence")
    assert tokens(c["test"]) != tokens(a["test"])


def test_splits_carve_uses_every_example_once_and_keeps_file_order() -> None:
    examples = make_examples(50)
    parts = carve(examples, dev=0.1, test=0.2, seed=13, by="sentence")
    assert (len(parts["train"]), len(parts["dev"]), len(parts["test"])) == (35, 5, 10)
    seen = Counter(t for part in parts.values() for t in tokens(part))
    assert seen == Counter(tokens(examples))
    for part in parts.values():
        indices = [int(t[1:]) for t in tokens(part)]
        assert indices == sorted(indices)


def test_splits_carve_by_document_keeps_documents_whole() -> None:
    examples = make_examples(60, docs=12)
    parts = carve(examples, dev=0.25, seed=3, by="document")
    assert set(parts) == {"train", "dev"}
    docs = {name: {ex.doc_id for ex in part} for name, part in parts.items()}
    assert not docs["train"] & docs["dev"]
    assert len(docs["dev"]) == 3  # 25% of 12 documents
    assert sum(map(len, parts.values())) == 60


def test_splits_documents_of_different_files_are_different_units() -> None:
    examples = make_examples(4, docs=2, source="a.json") + make_examples(4, docs=2, source="b.json")
    assert len(units_of(examples, "document")) == 4


def test_splits_by_document_without_document_ids_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="by = 'sentence'"):
        carve(make_examples(10), dev=0.1, by="document")


def test_splits_too_few_units_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot give"):
        carve(make_examples(2), dev=0.1, test=0.1, by="sentence")


def test_splits_a_positive_fraction_gets_at_least_one_unit() -> None:
    parts = carve(make_examples(5), test=0.01, by="sentence")
    assert len(parts["test"]) == 1 and len(parts["train"]) == 4


@given(
    n=st.integers(3, 80),
    docs=st.integers(1, 20),
    dev=st.floats(0, 0.45),
    test=st.floats(0.01, 0.45),
    seed=st.integers(0, 2**31),
    by=st.sampled_from(["sentence", "document"]),
)
def test_splits_carve_is_a_partition(n: int, docs: int, dev: float, test: float, seed: int, by: str) -> None:
    examples = make_examples(n, docs=min(docs, n))
    try:
        parts = carve(examples, dev=dev, test=test, seed=seed, by=by)
    except ConfigError as err:
        # only when the units are too few for a part each (every non-zero fraction takes at least one unit), or too
        # few units hold an entity for a dev part to have one
        units = min(docs, n) if by == "document" else n
        assert units < 10 and ("cannot give" in str(err) or "hold an entity" in str(err))
        return
    assert sorted(t for p in parts.values() for t in tokens(p)) == sorted(tokens(examples))
    assert parts == carve(examples, dev=dev, test=test, seed=seed, by=by)
    units = len(units_of(examples, by))
    sizes = {name: len(units_of(p, by)) for name, p in parts.items()}
    assert sizes.get("test", 0) == max(1, round(test * units))
    assert sizes.get("dev", 0) == (max(1, round(dev * units)) if dev > 0 else 0)


def _skill_pool(n: int, rare_every: int, seed: int = 0) -> list[Example]:
    """``n`` sentences: every ``rare_every``-th holds a Knowledge entity, every third a Skill one, others none."""
    out = []
    for i in range(n):
        tag = "B-Knowledge" if i % rare_every == 0 else "B-Skill" if i % 3 == 0 else "O"
        out.append(Example((f"s{i}", "x"), (tag, "O"), source="a.conll", line=i + 1))
    return out


@given(seed=st.integers(0, 2**31), rare_every=st.integers(8, 40))
def test_splits_carved_dev_holds_its_share_of_each_type(seed: int, rare_every: int) -> None:
    examples = _skill_pool(263, rare_every)
    holders = Counter(t[2:] for ex in examples for t in ex.tags if t != "O")
    parts = carve(examples, dev=0.1, seed=seed, by="sentence")
    dev = Counter(t[2:] for ex in parts["dev"] for t in ex.tags if t != "O")
    assert len(parts["dev"]) == 26
    for type_, n in holders.items():
        assert dev[type_] >= max(1, round(0.1 * n)), (type_, dict(dev), dict(holders))


def test_splits_too_few_entities_for_a_dev_part_is_refused_with_counts() -> None:
    examples = [Example((f"s{i}",), ("B-X",) if i < 2 else ("O",), source="a.conll", line=i + 1) for i in range(50)]
    with pytest.raises(ConfigError, match=r"only 2 of the 50 training sentences hold an entity"):
        carve(examples, dev=0.1, seed=1, by="sentence")


def test_splits_sample_is_seeded_and_ordered() -> None:
    examples = make_examples(100)
    a = sample(examples, 10, seed=1)
    assert tokens(a) == tokens(sample(examples, 10, seed=1))
    assert len(a) == 10 and [int(t[1:]) for t in tokens(a)] == sorted(int(t[1:]) for t in tokens(a))
    assert sample(examples, 500, seed=1) == examples


def test_splits_several_files_per_split_from_a_config_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_conll(data / "a.conll", [[("Paris", "B-LOC")], [("is", "O")]])
    write_conll(data / "b.conll", [[("Rome", "B-LOC"), ("too", "O")]])
    write_conll(data / "t.conll", [[("Oslo", "B-LOC")]])
    recipe = tmp_path / "recipes" / "job.toml"
    recipe.parent.mkdir()
    recipe.write_text(
        '[data]\ntrain = ["../data/a.conll", "../data/b.conll"]\ntest = "../data/t.conll"\n', encoding="utf-8"
    )
    config = load_config(recipe)
    assert config.data.train == [(data / "a.conll").resolve(), (data / "b.conll").resolve()]
    splits = read_splits(config)
    assert [ex.tokens for ex in splits["train"]] == [("Paris",), ("is",), ("Rome", "too")]
    assert [ex.tokens for ex in splits["test"]] == [("Oslo",)]
    assert describe_source(config.data, "train") == "a.conll, b.conll"


def test_splits_dev_file_as_train_with_a_carved_dev(tmp_path: Path) -> None:
    dev_file = write_conll(tmp_path / "dev.tsv", [[(f"w{i}", "B-PER" if i % 2 else "O")] for i in range(20)])
    test_file = write_conll(tmp_path / "test.tsv", [[("Anna", "B-PER")]])
    config = load_config(
        None,
        {
            "data.train": str(dev_file),
            "data.test": str(test_file),
            "data.split": {"dev": 0.2, "seed": 7, "by": "sentence"},
        },
    )
    splits = read_splits(config)
    assert set(splits) == {"train", "dev", "test"}
    assert (len(splits["train"]), len(splits["dev"]), len(splits["test"])) == (16, 4, 1)
    assert not {ex.tokens for ex in splits["train"]} & {ex.tokens for ex in splits["dev"]}
    assert describe_source(config.data, "dev") == "20% of the training sentences (data.split, seed 7)"
    again = read_data_splits(config.data)
    assert [ex.tokens for ex in again["dev"]] == [ex.tokens for ex in splits["dev"]]


def test_splits_sample_section_subsets_a_split(tmp_path: Path) -> None:
    train = write_conll(tmp_path / "train.tsv", [[(f"w{i}", "O")] for i in range(30)])
    config = load_config(None, {"data.train": str(train), "data.sample.train": 5, "data.sample.seed": 2})
    assert len(read_splits(config)["train"]) == 5


def test_splits_dev_in_train_joins_the_dev_split_as_read_carved_and_sampled(tmp_path: Path) -> None:
    """``data.dev_in_train`` (tune --refit-on-dev): train gains exactly the dev sentences a run without it scores on
    (a carved dev goes back, a sampled dev joins as sampled), and there is no dev split left."""
    train = write_conll(tmp_path / "train.tsv", [[(f"t{i}", "B-PER" if i % 2 else "O")] for i in range(30)])
    dev = write_conll(tmp_path / "dev.tsv", [[(f"d{i}", "B-PER" if i % 2 else "O")] for i in range(20)])
    given = {"data.train": str(train), "data.dev": str(dev), "data.sample": {"train": 10, "dev": 4, "seed": 3}}
    apart = read_splits(load_config(None, given))
    together = read_splits(load_config(None, {**given, "data.dev_in_train": True}))
    assert set(together) == {"train"}
    assert tokens(together["train"]) == tokens(apart["train"]) + tokens(apart["dev"])
    described = describe_source(load_config(None, {**given, "data.dev_in_train": True}).data, "train")
    assert described == ("train.tsv; a seeded sample of 10 sentences; with the dev split joined (data.dev_in_train): "
                         "dev.tsv; a seeded sample of 4 sentences")  # fmt: skip
    carved = {"data.train": str(train), "data.split": {"dev": 0.2, "seed": 7, "by": "sentence"}}
    assert sorted(tokens(read_splits(load_config(None, {**carved, "data.dev_in_train": True}))["train"])) == sorted(
        f"t{i}" for i in range(30)
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"data.train": "a", "data.dev": "d", "data.split.dev": 0.1}, "data.dev is given too"),
        ({"data.train": "a", "data.split.dev": 0.6, "data.split.test": 0.5}, "nothing to train on"),
        ({"data.train": "a", "data.split.seed": 3}, "moves nothing"),
        ({"data.train": [], "data.test": "t"}, "empty list"),
        ({"data.train": "a", "data.split.by": "paragraph"}, "data.split.by"),
        ({"data.train": "a", "data.sample.train": 0}, "data.sample.train"),
    ],
)
def test_splits_config_errors_name_the_key(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)
