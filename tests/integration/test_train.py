"""`nerforge train` end to end on a tiny corpus and the tiny random encoder: a model directory that loads as is."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from nerforge.cli import main
from nerforge.config import load_config

TECH = ["Python", "Kubernetes", "PostgreSQL", "Go", "React"]
SKILL = [["data", "analysis"], ["code", "review"], ["testing"], ["system", "design"]]
SOFT = [["teamwork"], ["clear", "communication"]]  # only in dev and test


def sentence(rng: random.Random, soft: bool) -> list[tuple[str, str]]:
    skill = rng.choice(SKILL)
    out = [("We", "O"), ("need", "O"), (rng.choice(TECH), "B-TECH"), ("and", "O")]
    out += [(w, "B-SKILL" if i == 0 else "I-SKILL") for i, w in enumerate(skill)]
    if soft:
        out += [("with", "O")] + [
            (w, "B-SOFTSKILL" if i == 0 else "I-SOFTSKILL") for i, w in enumerate(rng.choice(SOFT))
        ]
    return out + [(".", "O")]


def write_corpus(directory: Path, *, train: int = 32, dev: int = 8, test: int = 8) -> dict[str, Path]:
    """CoNLL files: train has TECH and SKILL; dev and test add SOFTSKILL, a type train never shows."""
    rng = random.Random(0)
    paths = {}
    for name, n in (("train", train), ("dev", dev), ("test", test)):
        blocks = [
            "\n".join(f"{w}\t{t}" for w, t in sentence(rng, soft=name != "train" and i % 2 == 0)) for i in range(n)
        ]
        paths[name] = directory / f"{name}.conll"
        paths[name].write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return paths


def test_train_without_config_gives_a_loadable_model(tmp_path: Path, tiny_encoder: Path) -> None:
    data = write_corpus(tmp_path)
    out = tmp_path / "model"
    code = main(
        ["train", "--train", str(data["train"]), "--dev", str(data["dev"]), "--test", str(data["test"]),
         "--output", str(out), "--model", str(tiny_encoder), "--epochs", "2", "--batch-size", "8",
         "--learning-rate", "5e-4", "--seed", "3", "--no-tracking", "--head", "plain"]
    )  # fmt: skip
    assert code == 0

    # a Hugging Face directory: safetensors only, labels of all splits (SOFTSKILL is only in dev/test)
    hf = json.loads((out / "config.json").read_text())
    assert set(hf["label2id"]) == {"O", "B-SKILL", "I-SKILL", "B-SOFTSKILL", "I-SOFTSKILL", "B-TECH", "I-TECH"}
    assert hf["id2label"]["0"] == "O"
    assert (out / "model.safetensors").is_file()
    assert not list(out.glob("*.bin")) and not list(out.glob("*.pt")) and not list(out.glob("*.pth"))

    from transformers import pipeline

    ner = pipeline("token-classification", model=str(out))
    found = ner("We need Python and data analysis .")
    assert found and all(
        e["entity"] in hf["label2id"] and e["entity"] != "O" for e in found
    )  # named labels, no LABEL_3

    meta = json.loads((out / "nerforge.json").read_text())
    assert meta["tags"] == [hf["id2label"][str(i)] for i in range(len(meta["tags"]))]
    assert meta["max_length"] == 128  # capped by the tiny encoder's positions
    assert meta["metrics"]["mode"] == "strict" and "test" in meta["metrics"] and "dev" in meta["metrics"]
    assert meta["extra"]["windows"]["train"]["examples"] == 32
    assert meta["extra"]["training"]["global_step"] == 8

    epochs = json.loads((out / "epochs.json").read_text())
    assert [row["epoch"] for row in epochs] == [1.0, 2.0]
    assert all(row["train_loss"] > 0 and 0.0 <= row["eval_f1"] <= 1.0 for row in epochs)
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]  # it learns something even in 8 steps

    card = (out / "README.md").read_text()
    assert "strict mode, IOB2 scheme" in card and "SOFTSKILL" in card and "pipeline(" in card
    assert "| train | `train.conll` | 32 |" in card

    assert load_config(out / "config.resolved.yaml").data.train == data["train"].resolve()
    for name in ("report.md", "metrics.json", "per_type_f1.png"):
        assert (out / "eval" / name).is_file()
    assert json.loads((out / "eval" / "metrics.json").read_text())["n_sentences"] == 8
    assert not (tmp_path / "model.work").exists()  # checkpoints are removed after success

    from nerforge.prediction import Tagger

    (prediction,) = Tagger.load(out).predict_words([["We", "need", "Go", "."]])
    assert len(prediction.tags) == 4


def test_train_from_toml_with_overrides_and_no_dev(
    tmp_path: Path, tiny_encoder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = write_corpus(tmp_path, train=16)
    job = tmp_path / "job.toml"
    job.write_text(
        f'[data]\ntrain = "train.conll"\n\n[model]\nname = "{tiny_encoder}"\nmax_length = 32\n\n'
        '[training]\nepochs = 3\nbatch_size = 8\n\n[tracking]\nenabled = false\n\n[output]\ndir = "out/model"\n',
        encoding="utf-8",
    )
    with caplog.at_level("WARNING"):
        code = main(["train", str(job), "--set", "training.epochs=1", "--set", "training.learning_rate=1e-3"])
    assert code == 0
    assert "no dev split" in caplog.text and "no early stopping" in caplog.text
    out = tmp_path / "out" / "model"
    resolved = load_config(out / "config.resolved.yaml")
    assert resolved.training.epochs == 1 and resolved.training.learning_rate == pytest.approx(1e-3)
    assert resolved.data.train == data["train"].resolve()
    assert json.loads((out / "nerforge.json").read_text())["max_length"] == 32
    assert len(json.loads((out / "epochs.json").read_text())) == 1
    assert not (out / "eval").exists()
    assert "No dev split" in (out / "README.md").read_text()


def test_train_bad_data_line_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "train.conll"
    bad.write_text("We\tO\nneed\tB-TECH\textra\n\n", encoding="utf-8")
    assert main(["train", "--train", str(bad), "--output", str(tmp_path / "m"), "--no-tracking"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {bad}:2: ")
    assert not (tmp_path / "m").exists()


def test_train_refuses_to_replace_a_foreign_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_corpus(tmp_path, train=2, dev=0, test=0)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code = main(["train", "--train", str(data["train"]), "--output", str(tmp_path / "mine"), "--no-tracking"])
    assert code == 2
    assert "is not a nerforge model directory" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_train_data_flags_apply_to_every_split(tmp_path: Path, tiny_encoder: Path) -> None:
    rows = "We\t_\tO\nneed\t_\tO\nPyTorch\t_\tB-AI\n\n"
    for name in ("train", "dev"):
        (tmp_path / f"{name}.tsv").write_text(rows * 4, encoding="utf-8")
    out = tmp_path / "model"
    code = main(
        ["train", "--train", str(tmp_path / "train.tsv"), "--dev", str(tmp_path / "dev.tsv"), "--output", str(out),
         "--model", str(tiny_encoder), "--epochs", "1", "--no-tracking", "--format", "conll", "--tag-column", "2",
         "--label-map", "AI=TECH"]
    )  # fmt: skip
    assert code == 0
    assert json.loads((out / "nerforge.json").read_text())["tags"] == ["O", "B-TECH", "I-TECH"]
    resolved = load_config(out / "config.resolved.yaml")
    assert resolved.data.tag_column == 2 and resolved.data.label_map == {"AI": "TECH"}


def test_bf16_training_reports_the_scores_of_the_saved_float32_model(tmp_path: Path, tiny_encoder: Path) -> None:
    """accelerate wraps a bf16-trained model's forward in autocast; the scores written at training time must come
    from the model as saved (float32), not from that wrapper."""
    import torch

    from nerforge.prediction import Tagger
    from nerforge.training.distributed import DistributedContext
    from nerforge.training.run import fit, package, prepare
    from nerforge.training.workdir import WorkDir

    data = write_corpus(tmp_path)
    out = tmp_path / "model"
    config = load_config(None, overrides={
        "data.train": str(data["train"]), "data.dev": str(data["dev"]), "data.test": str(data["test"]),
        "output.dir": str(out), "model.name": str(tiny_encoder), "training.epochs": 1, "training.batch_size": 8,
        "training.precision": "bf16", "tracking.enabled": False,
    })  # fmt: skip
    dist = DistributedContext.detect()
    prepared = prepare(config, dist)
    work = WorkDir(tmp_path / "work")
    fitted = fit(prepared, work, dist, work.prepare({}, resume=False), None)
    result = package(prepared, fitted, out)

    saved = Tagger.load(out, progress=False).engine.backend.model
    ids = torch.tensor([[101, 2057, 2342, 18750, 1998, 2951, 4106, 1012, 102]])
    with torch.inference_mode():
        assert torch.equal(fitted.model(input_ids=ids).logits, saved(input_ids=ids).logits)
    from nerforge.data.normalize import read_examples
    from nerforge.data.readers.options import ReadOptions
    from nerforge.evaluation import evaluate

    for name, recorded in (("dev", result.dev), ("test", result.test)):
        examples = read_examples(data[name], ReadOptions())
        tagger = Tagger.load(out, progress=False)
        predicted = [list(p.tags) for p in tagger.predict_words([list(e.tokens) for e in examples])]
        assert (
            recorded is not None
            and recorded.to_dict() == evaluate([list(e.tags) for e in examples], predicted).to_dict()
        )
