"""``nerforge init`` writes a config that reads back and trains; ``nerforge info`` describes a model (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_train import write_corpus

from nerforge.cli import main
from nerforge.config import TrainConfig, load_config
from nerforge.config.template import assign_splits, split_of


@pytest.mark.parametrize(
    ("name", "split"),
    [("train.conll", "train"), ("esp.testa", "dev"), ("esp.testb", "test"), ("valid.txt", "dev"),
     ("NER-de-dev.tsv", "dev"), ("test_data.json", "test"), ("corpus.jsonl", None), ("devel.tsv", "dev"),
     ("validation-00000-of-00001.parquet", "dev"), ("latest.conll", None)],
)  # fmt: skip
def test_split_of_file_names(name: str, split: str | None) -> None:
    assert split_of(Path(name)) == split


def test_files_without_a_split_word_train() -> None:
    assert assign_splits([Path("a.conll"), Path("b.conll"), Path("dev.conll")]) == {
        "train": [Path("a.conll"), Path("b.conll")],
        "dev": [Path("dev.conll")],
    }


def test_init_writes_a_config_that_reads_back_with_the_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data").mkdir()
    data = write_corpus(tmp_path / "data")
    config = tmp_path / "jobs" / "job.toml"
    config.parent.mkdir()
    assert main(["init", str(data["train"]), str(data["dev"]), str(data["test"]), "-o", str(config)]) == 0
    out = capsys.readouterr().out
    assert "labels: SKILL, SOFTSKILL, TECH" in out
    text = config.read_text()
    assert 'train = "../data/train.conll"' in text  # relative to the config, so the folder can move as a whole
    assert "conll, iob2, 32 sentences" in text
    assert "# class_weights = ..." in text  # unset keys are shown, commented out
    cfg = load_config(config)
    assert cfg.data.train == data["train"].resolve() and cfg.data.test == data["test"].resolve()
    assert cfg.data.labels == ["SKILL", "SOFTSKILL", "TECH"]
    defaults = TrainConfig()
    assert cfg.model == defaults.model and cfg.training == defaults.training  # nothing differs from flags-only
    assert cfg.output.dir == config.parent / "model"
    # an existing config is never replaced silently
    assert main(["init", str(data["train"]), "-o", str(config)]) == 2
    assert "exists" in capsys.readouterr().err


def test_init_on_one_file_carves_dev_and_test(tmp_path: Path) -> None:
    data = write_corpus(tmp_path)
    config = tmp_path / "one.toml"
    assert main(["init", str(data["train"]), "-o", str(config)]) == 0
    cfg = load_config(config)
    assert cfg.data.split is not None and (cfg.data.split.dev, cfg.data.split.test) == (0.1, 0.1)
    assert cfg.data.split.by == "sentence"  # the corpus has no documents


def test_init_keeps_the_data_flags(tmp_path: Path) -> None:
    src = tmp_path / "train.jsonl"
    src.write_text("\n".join(json.dumps({"words": ["Go", "rocks", "."], "labels": [1, 0, 0]}) for _ in range(5)) + "\n")
    config = tmp_path / "j.toml"
    code = main(["init", str(src), "-o", str(config), "--label-names", "O,B-TECH,I-TECH", "--tokens-field", "words",
                 "--tags-field", "labels"])  # fmt: skip
    assert code == 0
    cfg = load_config(config)
    assert cfg.data.label_names == ["O", "B-TECH", "I-TECH"] and cfg.data.tokens_field == "words"
    assert cfg.data.labels == ["TECH"]


def test_init_config_trains_and_info_describes_the_model(
    tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_corpus(tmp_path)
    config = tmp_path / "job.toml"
    assert main(["init", str(data["train"]), str(data["dev"]), str(data["test"]), "-o", str(config)]) == 0
    code = main(["train", str(config), "--model", str(tiny_encoder), "--max-steps", "2", "--no-tracking",
                 "--no-progress"])  # fmt: skip
    assert code == 0
    model = tmp_path / "model"
    capsys.readouterr()
    assert main(["info", str(model)]) == 0
    text = capsys.readouterr().out
    assert "head:      shape+crf" in text
    assert "labels:    SKILL, SOFTSKILL, TECH (7 tags)" in text
    assert f"train:     32 sentences, 32 entities from {data['train'].resolve()}" not in text  # 64: TECH + SKILL
    assert f"entities from {data['train'].resolve()}" in text
    assert "test F1:" in text and "dev F1:" in text
    assert main(["info", str(model), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["types"] == ["SKILL", "SOFTSKILL", "TECH"] and doc["head"] == "shape+crf"
    assert doc["data"]["train"]["sentences"] == 32 and sum(doc["data"]["train"]["entities"].values()) == 64
    assert doc["training"]["global_step"] == 2
    assert 0.0 <= doc["metrics"]["test"]["f1"] <= 1.0 and doc["metrics"]["test"]["support"] > 0
    assert doc["encoder"]["model_type"] == "bert"
    assert main(["info", str(tmp_path)]) == 2  # not a model directory: one line, usage exit code
    assert "nerforge.json is missing" in capsys.readouterr().err


def test_info_names_carved_splits_and_reading_options_as_flags(
    tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_corpus(tmp_path)
    code = main(["train", "--train", str(data["train"]), "--output", str(tmp_path / "m"), "--model", str(tiny_encoder),
                 "--max-steps", "1", "--no-tracking", "--no-progress", "--label-map", "SOFTSKILL=",
                 "--set", "data.split={dev = 0.2, seed = 7, by = 'sentence'}"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["info", str(tmp_path / "m")]) == 0
    text = capsys.readouterr().out
    assert "from 20% of the training sentences (data.split, seed 7)" in text and "from ?" not in text
    assert "label_map=SOFTSKILL=" in text and "{" not in text and "None" not in text


def test_init_names_the_tag_column_it_reads(tmp_path: Path) -> None:
    rows = ["w\tO\tO"] * 40 + ["Python\tB-Skill\tB-Knowledge", "teamwork\tB-Skill\tO", ""]
    data = tmp_path / "train.conll"
    data.write_text("\n".join(rows * 3) + "\n", encoding="utf-8")
    config = tmp_path / "job.toml"
    assert main(["init", str(data), "-o", str(config)]) == 0
    text = config.read_text(encoding="utf-8")
    assert "# train.conll: 2 columns hold tags: 1 (Skill), 2 (Knowledge); column 2 is read" in text
    assert "remove one from the list and its entities are read as O" in text


def test_init_is_a_library_function_with_a_typed_result(tmp_path: Path) -> None:
    from nerforge.config import load_config
    from nerforge.config.init import init_config
    from nerforge.errors import UsageError

    data = write_corpus(tmp_path)
    result = init_config([data["train"], data["dev"]], tmp_path / "job.toml")
    assert result.types == ["SKILL", "SOFTSKILL", "TECH"] and result.splits["dev"] == [data["dev"]]
    assert load_config(result.output).model.head.crf  # the head section of the template reads back
    with pytest.raises(UsageError, match="exists"):
        init_config([data["train"]], result.output)
