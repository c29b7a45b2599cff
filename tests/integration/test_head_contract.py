"""One contract for every head (plain softmax, shape features, CRF, document context), as Flair's BaseModelTest:

1. the head *learns*: on a small synthetic task a tiny random encoder reaches a dev F1 far above what an untrained
   or all-``O`` model gets (a stubbed trainer, a broken decoder or an all-``O`` Viterbi fails here);
2. the dev scores written at training time equal those of the reloaded model directory tagging the same sentences
   through the prediction engine (one decoding, wherever the model runs);
3. its ONNX export tags every dev sentence exactly as PyTorch does.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from test_heads import write_documents

from nerforge.cli import main
from nerforge.evaluation import evaluate
from nerforge.prediction import Tagger

TECH = ["python", "kubernetes", "golang", "react", "postgres", "terraform"]
SKILL = [["data", "analysis"], ["code", "review"], ["system", "design"], ["mentoring"]]
FILLER = ["we", "need", "you", "know", "with", "and", "strong", "for", "the", "team", "our", "use"]

HEADS = {
    "plain": [],
    "shape": ["model.features=[shape]"],
    "crf": ["model.crf=true"],
    "context": ["model.context_sentences=1"],
}


def _sentence(rng: random.Random) -> list[tuple[str, str]]:
    out = [(rng.choice(FILLER), "O") for _ in range(rng.randint(1, 3))]
    out.append((rng.choice(TECH), "B-TECH"))
    out += [(rng.choice(FILLER), "O") for _ in range(rng.randint(1, 2))]
    skill = rng.choice(SKILL)
    out += [(w, "B-SKILL" if i == 0 else "I-SKILL") for i, w in enumerate(skill)]
    return out + [(rng.choice(FILLER), "O")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("contract")
    return {
        "train": write_documents(root / "train.conll", 160, seed=0, make=_sentence),
        "dev": write_documents(root / "dev.conll", 40, seed=1, make=_sentence),
    }


def _dev(path: Path) -> tuple[list[list[str]], list[list[str]], list[str | None]]:
    from nerforge.data.normalize import read_examples
    from nerforge.data.readers.options import ReadOptions

    examples = read_examples(path, ReadOptions())
    return [list(e.tokens) for e in examples], [list(e.tags) for e in examples], [e.doc_id for e in examples]


@pytest.mark.parametrize("head", list(HEADS))
def test_head_contract(head: str, corpus: dict[str, Path], tiny_encoder: Path, tmp_path: Path) -> None:
    out = tmp_path / head
    args = ["train", "--train", str(corpus["train"]), "--dev", str(corpus["dev"]), "--output", str(out),
            "--model", str(tiny_encoder), "--epochs", "12", "--batch-size", "16", "--learning-rate", "3e-3",
            "--seed", "1", "--no-tracking", "--set", "model.max_length=32", "--set", "training.num_threads=2"]  # fmt: skip
    for item in HEADS[head]:
        args += ["--set", item]
    assert main(args) == 0
    meta = json.loads((out / "nerforge.json").read_text())
    dev_f1 = meta["metrics"]["dev"]["micro"]["f1"]

    # 1. it learned: an all-O or untrained model scores ~0 here
    assert dev_f1 >= 0.8, f"{head}: dev F1 {dev_f1:.3f} after training"

    # 2. the reloaded model directory, through the prediction engine, scores exactly what training wrote
    words, gold, docs = _dev(corpus["dev"])
    tagger = Tagger.load(out, progress=False)
    predicted = [list(p.tags) for p in tagger.predict_words(words, doc_ids=docs)]
    assert evaluate(gold, predicted).micro.f1 == pytest.approx(dev_f1, abs=1e-12)
    # the per-epoch dev F1 that chose the checkpoint ran inside training (bf16 autocast where training is bf16);
    # the reported score is the saved float32 model's, so the two agree closely but not always to the last entity
    epochs = json.loads((out / "epochs.json").read_text())
    assert max(row["eval_f1"] for row in epochs if row["eval_f1"] is not None) == pytest.approx(dev_f1, abs=0.05)

    # 3. the ONNX export tags alike
    pytest.importorskip("onnxruntime")
    onnx = tmp_path / f"{head}-onnx"
    assert main(["export", str(out), "--onnx", "--output", str(onnx)]) == 0
    assert json.loads((onnx / "parity.json").read_text())["tag_agreement"] == 1.0
    exported = Tagger.load(onnx, progress=False)
    assert [list(p.tags) for p in exported.predict_words(words, doc_ids=docs)] == predicted
