"""Every recipe in ``recipes/`` validates, and (with ../shared present) reads its splits with the labels it states.

Nothing is trained here. Recipe paths point into ``../../shared/datasets`` beside the checkout; they are redirected
to the ``shared_datasets`` fixture so that ``NERFORGE_SHARED`` is honoured.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from nerforge.config import load_config
from nerforge.data.schemes import strict_tags_to_spans
from nerforge.training.run import read_splits

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("*.toml"))
SPLITS = ("train", "dev", "test")


def test_recipes_are_there() -> None:
    assert len(RECIPES) >= 15
    listed = (REPO / "recipes" / "README.md").read_text(encoding="utf-8")
    for recipe in RECIPES:
        assert f"recipes/{recipe.name}" in listed, f"{recipe.name} is missing from recipes/README.md"


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_recipe_validates(recipe: Path, tmp_path: Path) -> None:
    # The recipe's own data root (../../shared/datasets) exists only beside a full checkout; the config is
    # validated against an empty root when it is absent, so a fresh clone without ../shared still checks every key.
    stated_root = recipe.parent / "../../shared/datasets"
    config = load_config(recipe, data_dir=None if stated_root.is_dir() else tmp_path)
    assert config.data.root is not None
    config.check_complete()
    assert config.data.labels, "a recipe states its entity types in data.labels"
    assert config.model.name == "default"
    assert config.data.files("train")
    assert config.data.files("test") or (config.data.split is not None and config.data.split.test > 0)
    text = recipe.read_text(encoding="utf-8")
    assert text.startswith("#"), "a recipe opens with comments on its data, labels and splits"
    assert "Splits" in text or "splits" in text


def _in_shared(path: Path, shared: Path) -> str:
    parts = path.parts
    return str(shared.joinpath(*parts[parts.index("datasets") + 1 :]))


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_recipe_reads_its_splits(recipe: Path, shared_datasets: Path) -> None:
    stated = load_config(recipe)
    overrides: dict[str, object] = {}
    for name in SPLITS:
        files = stated.data.files(name)
        if files:
            moved = [_in_shared(p, shared_datasets) for p in files]
            overrides[f"data.{name}"] = moved if isinstance(getattr(stated.data, name), list) else moved[0]
    config = load_config(recipe, overrides)
    splits = read_splits(config)
    assert set(splits) >= {"train", "test"}
    if stated.data.split is not None and stated.data.split.dev > 0:
        assert "dev" in splits
    found: Counter[str] = Counter()
    for name, examples in splits.items():
        entities = Counter(span.label for ex in examples for span in strict_tags_to_spans(ex.tags))
        assert examples and sum(entities.values()) > 0, f"{recipe.name}: the {name} split has no entities"
        found.update(entities)
    assert set(found) == set(stated.data.labels or ()), f"{recipe.name}: types in the data differ from data.labels"
