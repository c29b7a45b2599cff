"""The training config: TOML and YAML, unknown keys rejected by name, dotted overrides, resolved config."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from nerforge.cli import main
from nerforge.config import DataConfig, TrainConfig, load_config, parse_overrides
from nerforge.data.readers.options import ReadOptions
from nerforge.errors import ConfigError

TOML = """
[data]
train = "data/train.conll"
dev = "data/dev.conll"
tag_column = 1
label_map = { AI = "TECH", MISC = "" }

[model]
name = "some/encoder"
stride = 16

[training]
epochs = 3
learning_rate = 3e-5

[tracking]
enabled = false
"""

YAML = """
data:
  train: data/train.conll
  dev: data/dev.conll
  tag_column: 1
  label_map: {AI: TECH, MISC: ""}
model:
  name: some/encoder
  stride: 16
training:
  epochs: 3
  learning_rate: 3.0e-5
tracking:
  enabled: false
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_config_toml_and_yaml_load_the_same(tmp_path: Path) -> None:
    a = load_config(write(tmp_path / "job.toml", TOML))
    b = load_config(write(tmp_path / "job.yaml", YAML))
    assert a == b
    assert a.training.epochs == 3 and a.training.learning_rate == pytest.approx(3e-5)
    assert a.model.stride == 16 and a.tracking.enabled is False
    assert a.data.read_options().tag_column == 1
    assert a.data.read_options().label_map == {"AI": "TECH", "MISC": ""}


def test_config_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "job.toml", TOML))
    assert cfg.data.train == (tmp_path / "data" / "train.conll").resolve()
    assert cfg.data.dev is not None and cfg.data.dev.is_absolute()


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("[training]\nlr = 1e-4\n", "training.lr", "learning_rate"),
        ("[trainin]\nepochs = 1\n", "trainin", "training"),
        ("[data]\ntrain = 'x'\ntagcolumn = 2\n", "data.tagcolumn", "tag_column"),
    ],
)
def test_config_unknown_key_names_key_and_file(tmp_path: Path, text: str, key: str, hint: str) -> None:
    path = write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: unknown key '{key}'; expected one of ")
    assert hint in message
    assert "\n" not in message


def test_config_bad_value_names_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"job.yaml: training.batch_size: .*\(got 'many'\)"):
        load_config(write(tmp_path / "job.yaml", "training:\n  batch_size: many\n"))
    with pytest.raises(ConfigError, match=r"job.yaml: training.warmup_ratio"):
        load_config(write(tmp_path / "job.yaml", "training:\n  warmup_ratio: 1.5\n"))


def test_config_invalid_syntax_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"job.toml: invalid TOML"):
        load_config(write(tmp_path / "job.toml", "[training\nepochs = 1\n"))
    with pytest.raises(ConfigError, match=r"job.yaml:\d+: invalid YAML"):
        load_config(write(tmp_path / "job.yaml", "training:\n  epochs: [1\n"))
    with pytest.raises(ConfigError, match="unknown config format"):
        load_config(write(tmp_path / "job.ini", "x"))


def test_config_dotted_overrides_win_over_file_and_flags(tmp_path: Path) -> None:
    path = write(tmp_path / "job.toml", TOML)
    overrides = parse_overrides(["training.learning_rate=1e-4", "model.label_all_subwords=true", "data.labels=[A, B]"])
    cfg = load_config(path, overrides, flags={"training.learning_rate": 5e-5, "training.seed": 7})
    assert cfg.training.learning_rate == pytest.approx(1e-4)
    assert cfg.training.seed == 7
    assert cfg.model.label_all_subwords is True
    assert cfg.data.labels == ["A", "B"]
    assert cfg.training.epochs == 3  # untouched keys keep the file's value


def test_config_override_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--set: unknown key 'training.lr'"):
        load_config(None, parse_overrides(["training.lr=3"]))
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_overrides(["epochs"])
    with pytest.raises(ConfigError, match="'training.epochs' is a value, not a section"):
        load_config(None, parse_overrides(["training.epochs.x=1"]))


def test_config_resolved_yaml_round_trips(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "job.toml", TOML), {"output.dir": str(tmp_path / "model")})
    saved = write(tmp_path / "config.resolved.yaml", cfg.to_yaml())
    assert load_config(saved) == cfg
    raw = yaml.safe_load(saved.read_text())
    assert raw["training"]["batch_size"] == 16  # defaults are written out
    assert raw["output"]["dir"] == str((tmp_path / "model").resolve())


def test_config_requires_train_and_output() -> None:
    with pytest.raises(ConfigError, match="--train"):
        TrainConfig().check_complete()
    with pytest.raises(ConfigError, match="--output"):
        load_config(None, {"data.train": "x.conll"}).check_complete()


def test_config_data_section_has_every_reader_option() -> None:
    """A reader option added to ReadOptions must be settable from the config too."""
    missing = {f.name for f in fields(ReadOptions)} - set(DataConfig.model_fields)
    assert not missing


def test_cli_train_unknown_key_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "config.toml", "[training]\nlr = 3e-5\n")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {path}: unknown key 'training.lr'; expected one of ")


def test_config_override_enters_label_map() -> None:
    cfg = load_config(None, parse_overrides(["data.label_map.AI=TECH", "data.label_map.MISC=null"]))
    assert cfg.data.label_map == {"AI": "TECH", "MISC": None}


def test_cli_flags_override_only_what_was_given() -> None:
    from nerforge.cli.options import flag_overrides as _flag_overrides

    unset = dict.fromkeys(["format", "token_column", "tag_column", "separator", "label_map", "missing_tag"])
    assert _flag_overrides(unset, epochs=None, seed=None) == {}
    given = _flag_overrides(
        {**unset, "tag_column": 2, "separator": "tab", "label_map": "AI=TECH,MISC="}, epochs=3.0, train="x.conll"
    )
    assert given["data.tag_column"] == 2 and given["data.separator"] == "\t"
    assert given["data.label_map"] == {"AI": "TECH", "MISC": None}
    assert given["training.epochs"] == 3.0 and Path(given["data.train"]).is_absolute()


def test_a_misspelt_head_key_is_pointed_to_its_section() -> None:
    """``model.crff``: the head's keys live in ``model.head`` now, and the message says where (issue 26)."""
    with pytest.raises(ConfigError, match=r"did you mean 'model\.head\.crf'\?"):
        load_config(None, {"model.crff": True}, flags={"data.train": "t.conll"})


def test_config_toml_round_trips_label_maps_with_globs_and_dropped_types(tmp_path: Path) -> None:
    """best.toml (tune) and the bench configs are written by config_toml: a label map keyed ``*`` or ``B-*`` and a
    dropped type must read back as they were (a bare ``*`` key was invalid TOML; a dropped type was left out)."""
    from nerforge.config.template import config_toml

    label_map = {"*": "TECH", "B-*": "TECH", "AI": "TECH", "Udd": None, "Mixed Case.x": "Y"}
    values = {"data": {"train": str(tmp_path / "t.conll"), "label_map": label_map}, "training": {"epochs": 2}}
    cfg = load_config(write(tmp_path / "best.toml", config_toml(values, "header")))
    read = cfg.data.read_options().label_map
    assert read is not None and list(read) == list(label_map)
    assert {k: v or None for k, v in read.items()} == label_map
    assert cfg.training.epochs == 2
