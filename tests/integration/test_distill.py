"""``nerforge distill`` end to end on a tiny teacher trained by ``nerforge train``: the student is an ordinary model
directory with fewer layers that says whose student it is, it learned to agree with its teacher, and it keeps
train's rules (MLflow, resume after a kill, one-line errors)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from nerforge.cli import main
from nerforge.model_dir import ModelMeta, load_tokenizer
from nerforge.modeling.head import HeadSpec
from nerforge.modeling.model import load_model
from nerforge.prediction.tagger import Tagger
from nerforge.training.callbacks import CRASH_ENV, CRASH_EXIT_CODE

TECH = ["Python", "Kubernetes", "Go", "React", "Rust", "Docker"]
CITY = ["Paris", "Berlin", "Madrid", "Oslo"]
VERBS = ["use", "like", "teach", "need"]


def sentence(rng: random.Random) -> list[tuple[str, str]]:
    return [
        ("We", "O"),
        (rng.choice(VERBS), "O"),
        (rng.choice(TECH), "B-TECH"),
        ("in", "O"),
        (rng.choice(CITY), "B-LOC"),
        ("daily", "O"),
    ]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("distill-data")
    rng = random.Random(3)
    paths = {}
    for name, n in (("train", 48), ("dev", 12), ("test", 12)):
        lines = []
        for _ in range(n):
            lines += [f"{w}\t{t}" for w, t in sentence(rng)] + [""]
        paths[name] = directory / f"{name}.conll"
        paths[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    # The same training sentences with their TECH entities not annotated: only the teacher knows them.
    loc_only = paths["train"].read_text(encoding="utf-8").replace("B-TECH", "O")
    paths["loc_only"] = directory / "loc-only.conll"
    paths["loc_only"].write_text(loc_only, encoding="utf-8")
    texts = [" ".join(w for w, _ in sentence(rng)) for _ in range(40)]
    paths["unlabeled"] = directory / "more.txt"
    paths["unlabeled"].write_text("\n".join(texts) + "\n", encoding="utf-8")
    return paths


@pytest.fixture(scope="module")
def teacher(corpus: dict[str, Path], tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("teacher") / "teacher"
    code = main(
        [
            "train",
            "--train",
            str(corpus["train"]),
            "--dev",
            str(corpus["dev"]),
            "--test",
            str(corpus["test"]),
            "--model",
            str(tiny_encoder),
            "--epochs",
            "8",
            "--batch-size",
            "8",
            "--learning-rate",
            "3e-3",
            "--seed",
            "1",
            "--no-tracking",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    return out


def distill_args(
    teacher: Path, corpus: dict[str, Path], out: Path, *extra: str, size: tuple[str, str] = ("--layers", "1")
) -> list[str]:
    return [
        "distill",
        str(teacher),
        "--train",
        str(corpus["train"]),
        "--dev",
        str(corpus["dev"]),
        "--test",
        str(corpus["test"]),
        "--unlabeled",
        str(corpus["unlabeled"]),
        *size,
        "--epochs",
        "6",
        "--batch-size",
        "8",
        "--learning-rate",
        "3e-3",
        "--seed",
        "2",
        "--output",
        str(out),
        *extra,
    ]


def agreement(tagger: Tagger, reference: list[list[str]], sentences: list[list[str]]) -> float:
    got = [p.tags for p in tagger.predict_words(sentences)]
    pairs = [(a, b) for tags, ref in zip(got, reference, strict=True) for a, b in zip(tags, ref, strict=True)]
    return sum(a == b for a, b in pairs) / len(pairs)


def test_distill_writes_a_smaller_student_that_agrees_with_its_teacher(
    teacher: Path, corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    student = tmp_path / "student"
    assert main(distill_args(teacher, corpus, student, "--no-tracking", size=("--keep-layers", "0"))) == 0
    out = capsys.readouterr().out
    assert f"student: {student}" in out and "test: F1" in out and "strict IOB2" in out  # one printer with train
    config = json.loads((student / "config.json").read_text())
    assert config["encoder"]["num_hidden_layers"] == 1
    meta = ModelMeta.load(student)
    section = meta.extra["distillation"]
    assert section["teacher"] == str(teacher.resolve()) and section["kept_layers"] == [0]
    assert section["teacher_layers"] == 2 and section["unlabeled_sentences"] == 40
    assert section["student_parameters"] < section["teacher_parameters"]
    assert meta.head_section is not None and "crf" in meta.extra  # the teacher's head kind: shape + CRF
    card = (student / "README.md").read_text()
    assert "A distilled student of `" in card.split("## Labels")[0]

    # It agrees with its teacher on new texts of the kind it was distilled on.
    tokenizer = load_tokenizer(str(teacher))
    teacher_meta = ModelMeta.load(teacher)
    teacher_model = load_model(teacher, HeadSpec.from_meta(teacher_meta), teacher_meta.tags)
    rng = random.Random(99)
    sentences = [[w for w, _ in sentence(rng)] for _ in range(40)]
    reference = [p.tags for p in Tagger.from_model(teacher_model, tokenizer, teacher_meta).predict_words(sentences)]
    assert sum(t != "O" for tags in reference for t in tags) >= 40, "the teacher learned nothing to pass on"
    assert agreement(Tagger.load(student), reference, sentences) >= 0.9

    # An ordinary model directory: info, evaluate and predict work on it.
    assert main(["info", str(student)]) == 0
    assert f"distilled: from {teacher.resolve()}, 1 of its 2 layers (0)" in capsys.readouterr().out
    assert (
        main(["evaluate", str(student), str(corpus["test"]), "--output", str(tmp_path / "eval"), "--no-progress"]) == 0
    )
    assert main(["predict", str(student), "--text", "We use Rust in Oslo daily"]) == 0


def test_a_narrower_student_keeps_the_teacher_s_most_important_feed_forward_units(
    teacher: Path, corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    student = tmp_path / "narrow"
    assert main(distill_args(teacher, corpus, student, "--no-tracking", "--ffn-size", "16")) == 0
    config = json.loads((student / "config.json").read_text())
    assert config["encoder"]["intermediate_size"] == 16 and config["encoder"]["num_hidden_layers"] == 1
    section = ModelMeta.load(student).extra["distillation"]
    assert (section["teacher_ffn_size"], section["student_ffn_size"]) == (64, 16)
    assert "feed-forward 64 -> 16 units" in (student / "README.md").read_text().split("## Labels")[0]
    capsys.readouterr()
    assert main(["info", str(student)]) == 0
    shown = capsys.readouterr().out
    assert "feed-forward 64 -> 16 units" in shown and "hidden layers 1, hidden size 32, intermediate size 16" in shown

    rng = random.Random(5)
    sentences = [[w for w, _ in sentence(rng)] for _ in range(40)]
    reference = [p.tags for p in Tagger.load(teacher).predict_words(sentences)]
    assert agreement(Tagger.load(student), reference, sentences) >= 0.9
    onnx = tmp_path / "narrow-int8"
    assert main(["export", str(student), "--onnx", "--output", str(onnx), "--quantize", "int8"]) == 0
    assert agreement(Tagger.load(onnx), reference, sentences) >= 0.9


def tech_recall(model_dir: Path) -> float:
    rng = random.Random(7)
    sentences = [[w for w, _ in sentence(rng)] for _ in range(30)]
    predicted = Tagger.load(model_dir).predict_words(sentences)
    return sum(p.tags[2] == "B-TECH" for p in predicted) / len(predicted)  # the third word is always a TECH


def test_the_student_learns_what_only_the_teacher_knows(teacher: Path, corpus: dict[str, Path], tmp_path: Path) -> None:
    """Gold data without TECH annotations: weighted to the teacher (alpha 1) the student keeps tagging TECH, weighted
    to the gold tags (alpha 0) it unlearns it. The soft targets carry the teacher's knowledge."""
    assert tech_recall(teacher) >= 0.9
    recalls = {}
    for alpha in ("1", "0"):
        out = tmp_path / f"alpha-{alpha}"
        args = distill_args(teacher, {**corpus, "train": corpus["loc_only"]}, out, "--no-tracking", "--alpha", alpha)
        assert main(args) == 0
        recalls[alpha] = tech_recall(out)
        epochs = json.loads((out / "epochs.json").read_text())
        assert epochs[0]["train_loss"] > 0  # a loss that is there to learn from, in both runs
    assert recalls["1"] >= 0.9 and recalls["0"] <= 0.5, recalls


def test_distill_is_tracked_in_mlflow(teacher: Path, corpus: dict[str, Path], tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    student = tmp_path / "student"
    args = distill_args(teacher, corpus, student, "--tracking-uri", uri, "--experiment", "distill-test")
    args[args.index("--epochs") + 1] = "1"
    assert main(args) == 0
    import mlflow

    client = mlflow.tracking.MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("distill-test").experiment_id])
    assert run.data.params["distill.layers"] == "1" and run.data.params["distill.alpha"] == "0.5"
    assert "dev_f1" in run.data.metrics and "train_loss" in run.data.metrics


def test_a_killed_distillation_resumes(teacher: Path, corpus: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "student"
    args = distill_args(teacher, corpus, out, "--no-tracking")
    env = {**os.environ, CRASH_ENV: "13", "HF_HUB_OFFLINE": "1"}  # 88 windows / 8 = 11 steps an epoch
    script = "import sys; from nerforge.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True)
    assert proc.returncode == CRASH_EXIT_CODE, proc.stderr[-2000:]
    assert not out.exists()
    assert sorted(p.name for p in (tmp_path / "student.work" / "checkpoints").iterdir()) == ["checkpoint-11"]
    assert main([*args, "--resume"]) == 0
    info = ModelMeta.load(out).training
    assert info.resumed_from.endswith("checkpoint-11") and info.global_step > 13
    assert ModelMeta.load(out).extra["distillation"]["student_layers"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a[:1] + ["/no/such/model"] + a[2:], "not a nerforge model directory"),
        (lambda a: [x if x != "1" else "5" for x in a], "a student keeps 1 to 2 of the teacher's 2 layers, not 5"),
        (
            lambda a: [x for i, x in enumerate(a) if x != "--layers" and a[i - 1] != "--layers"],
            "give the student's size",
        ),
        (lambda a: [*a, "--keep-layers", "0"], "give the student's size"),
        (lambda a: [*a, "--alpha", "1.5"], "distill.alpha"),
        (lambda a: [*a, "--ffn-size", "65"], "feed-forward size must be 1 to the teacher's 64, not 65"),
        (lambda a: [x if not x.endswith("more.txt") else x + ".missing" for x in a], "no such unlabeled file"),
        (lambda a: [a[1] if a[i - 1] == "--output" else x for i, x in enumerate(a)], "is the teacher; choose another"),
    ],
)
def test_distill_errors_are_one_line(
    teacher: Path, corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], change, message: str
) -> None:
    args = change(distill_args(teacher, corpus, tmp_path / "student", "--no-tracking"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "student").exists()
    assert (teacher / "nerforge.json").is_file()


def test_augmented_copies_join_the_transfer_set(teacher: Path, corpus: dict[str, Path], tmp_path: Path) -> None:
    train_sentences = corpus["train"].read_text(encoding="utf-8").strip().count("\n\n") + 1
    student = tmp_path / "student"
    assert main(distill_args(teacher, corpus, student, "--no-tracking", "--augment", "2", "--max-steps", "2")) == 0
    section = ModelMeta.load(student).extra["distillation"]
    assert section["augment"] == 2 and section["unlabeled_sentences"] == 40 + 2 * train_sentences


def layer_gap(student_dir: Path, teacher_dir: Path, corpus: dict[str, Path]) -> float:
    """The hidden-state loss between the student's layers and the teacher's kept ones, on the test sentences."""
    import torch

    from nerforge.modeling.model import load_trained
    from nerforge.modeling.student import hidden_loss

    section = ModelMeta.load(student_dir).extra["distillation"]
    tokenizer = load_tokenizer(teacher_dir)
    words = [line.split("\t")[0] for line in corpus["test"].read_text(encoding="utf-8").splitlines() if line]
    batch = tokenizer([" ".join(words[i : i + 6]) for i in range(0, len(words), 6)], padding=True, return_tensors="pt")
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        taught = load_trained(teacher_dir, ModelMeta.load(teacher_dir)).eval()(**inputs, output_hidden_states=True)
        target = torch.stack([taught.hidden_states[k + 1] for k in section["kept_layers"]], dim=1)
        own = load_trained(student_dir, ModelMeta.load(student_dir)).eval()(**inputs, output_hidden_states=True)
        return float(hidden_loss(own.hidden_states[1:], target, inputs["attention_mask"]))


def test_the_hidden_state_loss_brings_the_student_s_layers_towards_the_teacher_s(
    teacher: Path, corpus: dict[str, Path], tmp_path: Path
) -> None:
    gaps = {}
    for weight in ("0", "20"):
        out = tmp_path / f"hidden-{weight}"
        assert main(distill_args(teacher, corpus, out, "--no-tracking", "--hidden-weight", weight)) == 0
        section = ModelMeta.load(out).extra["distillation"]
        assert section["hidden_weight"] == float(weight)
        gaps[weight] = layer_gap(out, teacher, corpus)
    assert gaps["20"] < gaps["0"] / 2, gaps
    assert "token vectors against its teacher layer's (weight 20)" in (tmp_path / "hidden-20" / "README.md").read_text()


def test_a_small_training_set_without_unlabelled_texts_is_warned_about(
    teacher: Path, corpus: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from nerforge.training.distill import SMALL_TRANSFER, warn_without_unlabeled

    args = distill_args(teacher, corpus, tmp_path / "student", "--no-tracking", "--max-steps", "1")
    at = args.index("--unlabeled")
    with caplog.at_level("WARNING", logger="nerforge.training.distill"):
        assert main(args[:at] + args[at + 2 :]) == 0
    [message] = [r.getMessage() for r in caplog.records if "no unlabelled texts" in r.getMessage()]
    assert "distilling from 48 training sentences" in message and "--unlabeled FILE" in message
    assert "--augment 2" in message
    caplog.clear()
    with caplog.at_level("WARNING", logger="nerforge.training.distill"):
        assert main(distill_args(teacher, corpus, tmp_path / "again", "--no-tracking", "--max-steps", "1")) == 0
    assert not [r for r in caplog.records if "no unlabelled texts" in r.getMessage()]
    assert not warn_without_unlabeled(SMALL_TRANSFER, 0)  # enough training sentences of its own
    assert warn_without_unlabeled(100, 0, augment=2)
