"""``nerforge annotate --terms``: round zero of the annotation loop from a term list, in every output format, read
back by nerforge's readers as training data (issue 29, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nerforge.cli import main
from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.data.schemes import strict_tags_to_spans

POOL = [
    "Senior Machine Learning Engineer 🎉: Python, APIs and data pipelines.",
    "",
    "Señora Núñez wants teamwork and clear communication; Go, not Google.",
]


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    terms = tmp_path / "terms.csv"
    terms.write_text("TECH,SKILL,SOFT\nPython,machine learning,teamwork\nAPI,data pipeline,clear communication\n"
                     "Go,,\n", encoding="utf-8")  # fmt: skip
    pool = tmp_path / "pool.csv"
    pool.write_text("id,description\n" + "".join(f'{n},"{t}"\n' for n, t in enumerate(POOL)), encoding="utf-8")
    return {"terms": terms, "pool": pool}


EXPECTED = [
    [("machine learning", "SKILL"), ("python", "TECH"), ("apis", "TECH"), ("data pipelines", "SKILL")],
    [],
    [("teamwork", "SOFT"), ("clear communication", "SOFT"), ("go", "TECH")],
]


def test_label_studio_tasks_from_terms_read_back_as_training_data(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "round0.json"
    code = main(["annotate", "--terms", str(files["terms"]), str(files["pool"]), "--text-column", "description",
                 "--format", "label-studio", "-o", str(out)])  # fmt: skip
    assert code == 0
    assert "7 terms (SKILL, SOFT, TECH): tagged 3 texts: 7 entities" in capsys.readouterr().out
    tasks = json.loads(out.read_text(encoding="utf-8"))
    assert [t["data"]["description"] for t in tasks] == POOL and [t["data"]["id"] for t in tasks] == ["0", "1", "2"]
    for task, expected in zip(tasks, EXPECTED, strict=True):
        [prediction] = task["predictions"]
        assert prediction["model_version"].startswith("nerforge-terms-")
        got = [(r["value"]["text"].casefold(), r["value"]["labels"][0]) for r in prediction["result"]]
        assert got == expected
        for r in prediction["result"]:
            assert task["data"]["text"][r["value"]["start"] : r["value"]["end"]] == r["value"]["text"]
    # what Label Studio exports once a person accepted each suggestion: the next round trains on it
    exported = [{"id": n + 1, "data": t["data"], "annotations": [{"id": n + 1, "result": t["predictions"][0]["result"]}]}
                for n, t in enumerate(tasks)]  # fmt: skip
    export = tmp_path / "export.json"
    export.write_text(json.dumps(exported, ensure_ascii=False), encoding="utf-8")
    corpus = read_corpus(export, ReadOptions())
    spans = [[(" ".join(ex.tokens[s.start : s.end]).casefold(), s.label) for s in strict_tags_to_spans(ex.tags)]
             for ex in corpus.examples]  # fmt: skip
    assert spans == [e for e in EXPECTED if e]


def test_plain_term_list_with_a_label_to_jsonl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    terms = tmp_path / "skills.txt"
    terms.write_text("teamwork\nclear communication\n", encoding="utf-8")
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(POOL) + "\n", encoding="utf-8")
    out = tmp_path / "silver.jsonl"
    assert main(["annotate", "--terms", str(terms), "--label", "SOFT", str(pool), "-o", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [[e["text"] for e in r["entities"]] for r in records] == [[], [], ["teamwork", "clear communication"]]
    assert main(["annotate", "--terms", str(terms), str(pool), "-o", str(tmp_path / "x.jsonl")]) == 2
    assert "needs their type: give --label" in capsys.readouterr().err
    assert main(["annotate", "--terms", str(tmp_path / "none.csv"), str(pool), "-o", str(tmp_path / "y.jsonl")]) == 2
    assert "no such term list" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "y.jsonl").exists()
