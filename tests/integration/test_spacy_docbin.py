"""``--format spacy`` writes a spaCy v3 DocBin that the real spaCy loads and ``spacy train`` trains on (issue 29, item
4); the v2 tuple JSON is ``--format spacy-json``. Skipped where spaCy is not installed (``pip install
'nerforge[spacy]'``; CI installs it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nerforge.cli import main
from nerforge.prediction.annotation_formats import doc_words

TEXTS = [
    "Ann Smith 🎉 works at  Acme Corp in Zürich\twith Python and SQL.",
    "",
    "  Señora Núñez leads the data team in São Paulo; 東京 office uses Kubernetes.  ",
]


@given(st.text(alphabet="ab .,\n\t🎉é-", max_size=60))
def test_doc_words_rebuild_the_text_and_hold_every_word(text: str) -> None:
    words, spaces, starts, ends = doc_words(text)
    assert "".join(w + (" " if sp else "") for w, sp in zip(words, spaces, strict=True)) == text
    assert all(w for w in words)
    from nerforge.prediction.words import tokenize_words

    for word in tokenize_words(text):
        assert words[starts[word.start]] == word.text and ends[word.end] == starts[word.start] + 1


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> Path:
    from conftest import build_tiny_token_model

    return build_tiny_token_model(tiny_encoder, tmp_path_factory.mktemp("docbin"), types=["ORG", "PER", "TECH"],
                                  max_length=16, stride=4)  # fmt: skip


def _texts(tmp_path: Path) -> Path:
    src = tmp_path / "texts.jsonl"
    src.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in TEXTS), encoding="utf-8")
    return src


def test_the_docbin_loads_in_spacy_with_the_predicted_entities(tmp_path: Path, model: Path) -> None:
    spacy = pytest.importorskip("spacy")
    from spacy.tokens import DocBin

    src = _texts(tmp_path)
    plain = tmp_path / "plain.jsonl"
    assert main(["predict", str(model), str(src), "-o", str(plain), "--no-progress"]) == 0
    records = [json.loads(line) for line in plain.read_text(encoding="utf-8").splitlines()]
    assert sum(len(r["entities"]) for r in records) > 3, "the tiny model found nothing: the test would prove nothing"
    out = tmp_path / "out.spacy"
    assert main(["predict", str(model), str(src), "-o", str(out), "--format", "spacy", "--no-progress"]) == 0
    docs = list(DocBin().from_bytes(out.read_bytes()).get_docs(spacy.blank("en").vocab))
    assert [d.text for d in docs] == TEXTS
    for doc, record in zip(docs, records, strict=True):
        assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [
            (e["start"], e["end"], e["label"]) for e in record["entities"]
        ]
    old = tmp_path / "old.json"
    assert main(["predict", str(model), str(src), "-o", str(old), "--format", "spacy-json", "--no-progress"]) == 0
    assert [t for t, _ in json.loads(old.read_text(encoding="utf-8"))] == TEXTS


def test_spacy_train_runs_on_the_docbin(tmp_path: Path, model: Path) -> None:
    pytest.importorskip("spacy")
    src = _texts(tmp_path)
    out = tmp_path / "train.spacy"
    assert main(["predict", str(model), str(src), "-o", str(out), "--format", "spacy", "--no-progress"]) == 0
    config = tmp_path / "config.cfg"
    run = [sys.executable, "-m", "spacy"]
    subprocess.run([*run, "init", "config", str(config), "--lang", "en", "--pipeline", "ner", "--force"],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    debug = subprocess.run([*run, "debug", "data", str(config), "--paths.train", str(out), "--paths.dev", str(out)],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert "Corpus is loadable" in debug.stdout, debug.stdout + debug.stderr
    trained = subprocess.run(
        [*run, "train", str(config), "--output", str(tmp_path / "spacy-model"), "--paths.train", str(out),
         "--paths.dev", str(out), "--training.max_steps", "4", "--training.eval_frequency", "2"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-2000:]
    assert (tmp_path / "spacy-model" / "model-last" / "meta.json").is_file()


def test_without_spacy_the_docbin_is_one_line_before_the_model_loads(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "spacy" else real(name, *a))
    code = main(["predict", str(model), str(_texts(tmp_path)), "-o", str(tmp_path / "o.spacy"), "--format", "spacy"])
    assert (
        code == 2
        and "spacy is not installed; install it with: pip install 'nerforge[spacy]'" in capsys.readouterr().err
    )
    assert not (tmp_path / "o.spacy").exists()


def test_the_docbin_reads_back_as_training_data(tmp_path: Path, model: Path) -> None:
    pytest.importorskip("spacy")
    from nerforge.data.readers.options import ReadOptions
    from nerforge.data.readers.registry import read_corpus
    from nerforge.data.schemes import strict_tags_to_spans
    from nerforge.errors import DataFormatError

    src = _texts(tmp_path)
    plain = tmp_path / "plain.jsonl"
    assert main(["predict", str(model), str(src), "-o", str(plain), "--no-progress"]) == 0
    records = [json.loads(line) for line in plain.read_text(encoding="utf-8").splitlines()]
    out = tmp_path / "accepted.spacy"
    assert main(["predict", str(model), str(src), "-o", str(out), "--format", "spacy", "--no-progress"]) == 0
    corpus = read_corpus(out, ReadOptions())
    assert corpus.format == "docbin"
    with_text = [r for r in records if r["text"].strip()]
    assert len(corpus.examples) == len(with_text)
    for example, record in zip(corpus.examples, with_text, strict=True):
        assert not any(t.isspace() for t in example.tokens)
        got = [(example.offsets[s.start][0], example.offsets[s.end - 1][1], s.label)
               for s in strict_tags_to_spans(example.tags)]  # fmt: skip
        assert got == [(e["start"], e["end"], e["label"]) for e in record["entities"]]
    damaged = tmp_path / "damaged.spacy"
    damaged.write_bytes(out.read_bytes()[: len(out.read_bytes()) // 2])
    with pytest.raises(DataFormatError, match=r"damaged.spacy: not a spaCy DocBin"):
        read_corpus(damaged, ReadOptions())
