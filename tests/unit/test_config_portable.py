"""Portable configs: data paths relative to a data root (``data.root``, ``--data-dir``, ``$NERFORGE_DATA_DIR``),
``--set`` values in TOML or YAML, and the defaults a flags-only run gets (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerforge.config import load_config, parse_overrides
from nerforge.errors import ConfigError
from nerforge.modeling.head import HEAD_PRESETS, head_preset

RECIPE = """
[data]
root = "../datasets"
train = "corpus/train.conll"
dev = ["corpus/dev1.conll", "corpus/dev2.conll"]

[output]
dir = "../runs/model"
"""


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """recipes/job.toml beside datasets/corpus/ and elsewhere/corpus/ (a second copy of the data)."""
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "job.toml").write_text(RECIPE, encoding="utf-8")
    for root in ("datasets", "elsewhere"):
        (tmp_path / root / "corpus").mkdir(parents=True)
    return tmp_path


def test_data_paths_are_relative_to_the_declared_root(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NERFORGE_DATA_DIR", raising=False)
    cfg = load_config(layout / "recipes" / "job.toml")
    assert cfg.data.train == layout / "datasets" / "corpus" / "train.conll"
    assert cfg.data.dev == [
        layout / "datasets" / "corpus" / "dev1.conll",
        layout / "datasets" / "corpus" / "dev2.conll",
    ]
    assert cfg.output.dir == layout / "runs" / "model"  # not a data path: relative to the file as before


def test_data_dir_flag_and_environment_move_the_root(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NERFORGE_DATA_DIR", str(layout / "elsewhere"))
    cfg = load_config(layout / "recipes" / "job.toml")
    assert cfg.data.train == layout / "elsewhere" / "corpus" / "train.conll"
    assert cfg.data.root == layout / "elsewhere"
    # --data-dir wins over the environment
    cfg = load_config(layout / "recipes" / "job.toml", data_dir=layout / "datasets")
    assert cfg.data.train == layout / "datasets" / "corpus" / "train.conll"
    assert cfg.output.dir == layout / "runs" / "model"


def test_environment_never_moves_a_config_without_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "job.toml").write_text('[data]\ntrain = "train.conll"\n', encoding="utf-8")
    monkeypatch.setenv("NERFORGE_DATA_DIR", str(tmp_path / "elsewhere"))
    assert load_config(tmp_path / "job.toml").data.train == tmp_path / "train.conll"
    # but an explicit --data-dir does
    assert load_config(tmp_path / "job.toml", data_dir=tmp_path / "elsewhere").data.train == (
        tmp_path / "elsewhere" / "train.conll"
    )


def test_a_missing_root_is_one_clear_error(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NERFORGE_DATA_DIR", str(layout / "nope"))
    with pytest.raises(ConfigError, match=r"data root .*nope \(from \$NERFORGE_DATA_DIR\) is not a folder"):
        load_config(layout / "recipes" / "job.toml")
    monkeypatch.delenv("NERFORGE_DATA_DIR")
    with pytest.raises(ConfigError, match=r"from --data-dir"):
        load_config(layout / "recipes" / "job.toml", data_dir=layout / "missing")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{dev=0.1,test=0.2}", {"dev": 0.1, "test": 0.2}),  # TOML inline table, as the README shows
        ("{ dev = 0.1, seed = 7 }", {"dev": 0.1, "seed": 7}),
        ("{dev: 0.1}", {"dev": 0.1}),  # YAML flow mapping still works
        ("[SKILL, TECH]", ["SKILL", "TECH"]),  # YAML bare words
        ('["SKILL", "TECH"]', ["SKILL", "TECH"]),  # TOML array
        ("3e-5", 3e-5),
        ("true", True),
        ('"a b"', "a b"),
        ("plain words", "plain words"),
        ("", None),
    ],
)
def test_set_takes_toml_and_yaml_values(text: str, expected: object) -> None:
    assert parse_overrides([f"data.x={text}"]) == {"data.x": expected}


def test_set_split_from_the_readme_validates(tmp_path: Path) -> None:
    cfg = load_config(None, parse_overrides(["data.split={dev=0.1,test=0.2}"]), flags={"data.train": "t.conll"})
    assert cfg.data.split is not None
    assert (cfg.data.split.dev, cfg.data.split.test) == (0.1, 0.2)


def test_flags_only_defaults_are_the_measured_best_head() -> None:
    cfg = load_config(None, flags={"data.train": "t.conll", "output.dir": "m"})
    spec = cfg.model.head
    assert spec.name == "shape+crf"
    assert (cfg.training.learning_rate, cfg.training.batch_size) == (1e-4, 16)


@pytest.mark.parametrize("name", sorted(HEAD_PRESETS))
def test_head_presets_name_the_head_they_build(name: str) -> None:
    cfg = load_config(None, flags={"data.train": "t.conll", **{f"model.{k}": v for k, v in head_preset(name).items()}})
    built = cfg.model.head.name
    assert built == ("softmax" if name == "plain" else name)


def test_softmax_only_options_get_a_softmax_head_unless_a_crf_is_asked_for() -> None:
    cfg = load_config(None, {"model.label_all_subwords": True}, flags={"data.train": "t.conll"})
    assert cfg.model.head.name == "shape+softmax"
    cfg = load_config(None, {"model.class_weights": "balanced"}, flags={"data.train": "t.conll"})
    assert not cfg.model.head.crf
    with pytest.raises(ConfigError, match="label_all_subwords"):
        load_config(None, {"model.label_all_subwords": True, "model.crf": True}, flags={"data.train": "t.conll"})


def test_repeated_split_flags_keep_every_file(tmp_path: Path) -> None:
    from nerforge.cli.options import flag_overrides as _flag_overrides

    a, b = tmp_path / "a.conll", tmp_path / "b.conll"
    flags = _flag_overrides({}, train=[a, b], dev=[a], test=[])
    assert flags["data.train"] == [str(a), str(b)] and flags["data.dev"] == str(a)
    assert "data.test" not in flags
    cfg = load_config(None, flags=flags)
    assert cfg.data.files("train") == [a, b]


def test_data_dir_without_a_config_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nerforge.cli import main

    assert main(["train", "--train", "t.conll", "--output", str(tmp_path / "m"), "--data-dir", str(tmp_path)]) == 2
    assert "--data-dir" in capsys.readouterr().err


def test_an_unknown_head_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nerforge.cli import main

    assert main(["train", "--train", "t.conll", "--output", str(tmp_path / "m"), "--head", "lstm"]) == 2
    assert "'lstm' is not one of: shape+crf, crf, shape+softmax, plain" in capsys.readouterr().err
