"""Layers and overlapping entities in the data (issue 28, item 1): several tag columns, overlapping spans from the
annotation tools' formats, BRAT nesting kept, JSON Lines and CoNLL written back, and ``inspect``'s nesting report.
A reader that dropped the second layer, or flattened nested spans, fails these."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nerforge.cli import main
from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.errors import UsageError
from nerforge.types import Span

# token, skill, knowledge; "Dev/Sec Ops" is a knowledge span inside the skill span; "Udd" and "B-" are junk tags
TWO_COLUMNS = """working\tB-Skill\tO
in\tI-Skill\tO
a\tI-Skill\tO
Dev/Sec\tI-Skill\tB-Knowledge
Ops\tI-Skill\tI-Knowledge
culture\tI-Skill\tO

Python\tO\tB-Knowledge
and\tO\tO
teamwork\tUdd\tO

"""


def _two_columns(tmp_path: Path) -> Path:
    path = tmp_path / "skills.conll"
    path.write_text(TWO_COLUMNS, encoding="utf-8")
    return path


def test_two_tag_columns_are_two_layers_each_read_and_repaired_like_one(tmp_path: Path) -> None:
    corpus = read_corpus(_two_columns(tmp_path), ReadOptions(tag_columns=(1, 2), lenient=True))
    first, second = corpus.examples
    assert first.spans == (Span(0, 6, "Skill", "Skill"), Span(3, 5, "Knowledge", "Knowledge"))
    assert first.tags == ("B-Skill",) + ("I-Skill",) * 5  # the flat view: the first layer
    assert second.spans == (Span(0, 1, "Knowledge", "Knowledge"),) and second.tags == ("O", "O", "O")
    assert first.layers == second.layers == ("Skill", "Knowledge")  # a sentence without a skill is still annotated
    kinds = {f.kind for f in corpus.findings}
    assert "layers" in kinds and "tag-columns" not in kinds
    junk = [f for f in corpus.findings if "Udd" in f.message]
    assert junk and f"{tmp_path / 'skills.conll'}:10" in junk[0].message  # its file:line, from column 1's reading


def test_layer_names_and_the_label_map_apply_to_every_layer(tmp_path: Path) -> None:
    options = ReadOptions(tag_columns=(1, 2), layer_names=("skill", "knowledge"), lenient=True,
                          label_map={"Knowledge": "KNOW"})  # fmt: skip
    first = read_corpus(_two_columns(tmp_path), options).examples[0]
    assert first.spans == (Span(0, 6, "Skill", "skill"), Span(3, 5, "KNOW", "knowledge"))


@pytest.mark.parametrize(("options", "problem"), [
    ({"tag_columns": (1, 2), "layer_names": ("a",)}, "1 layer names for 2 tag columns"),
    ({"tag_columns": (1, 1)}, "listed twice"),
    ({"layer_names": ("a", "b")}, "several tag columns"),
])  # fmt: skip
def test_bad_layer_options_are_one_line(options: dict, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        ReadOptions(**options)


def test_tag_column_given_twice_converts_both_layers_and_reads_them_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _two_columns(tmp_path)
    out = tmp_path / "out.jsonl"
    assert main(["convert", str(src), str(out), "--tag-column", "1", "--tag-column", "2", "--lenient",
                 "--layer-names", "skill,knowledge"]) == 0  # fmt: skip
    assert "2 layers" not in capsys.readouterr().err  # nothing refused
    record = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert record["layers"] == ["skill", "knowledge"] and len(record["spans"]) == 2
    back = read_corpus(out).examples
    assert back[0].spans == (Span(0, 6, "Skill", "skill"), Span(3, 5, "Knowledge", "knowledge"))
    assert back[1].layers == ("skill", "knowledge")
    conll = tmp_path / "out.conll"
    assert main(["convert", str(out), str(conll)]) == 0
    lines = conll.read_text(encoding="utf-8").splitlines()
    assert lines[3] == "Dev/Sec\tI-Skill\tB-Knowledge" and lines[7] == "Python\tO\tB-Knowledge"
    again = read_corpus(conll, ReadOptions(tag_columns=(1, 2), layer_names=("skill", "knowledge")))
    assert [ex.spans for ex in again.examples] == [ex.spans for ex in back]
    assert main(["convert", str(src), str(tmp_path / "x.jsonl"), "--tag-column", "1", "--tag-column", "2",
                 "--tag-columns", "1,2"]) == 2  # fmt: skip
    assert "one way" in capsys.readouterr().err


def test_label_studio_regions_that_overlap_are_read_by_layer(tmp_path: Path) -> None:
    text = "We need Python testing skills."

    def region(start: int, end: int, label: str, control: str) -> dict:
        return {"from_name": control, "to_name": "text", "type": "labels",
                "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}}  # fmt: skip

    tasks = [
        {
            "id": 1,
            "data": {"text": text},
            "annotations": [
                {
                    "result": [
                        region(8, 22, "SKILL", "skill"),
                        region(8, 14, "TECH", "knowledge"),
                        region(15, 22, "ACT", "knowledge"),
                    ]
                }
            ],
        }
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    (ex,) = read_corpus(path).examples
    assert ex.layers == ("skill", "knowledge") and ex.tags == ("O", "O", "B-SKILL", "I-SKILL", "O", "O")
    assert ex.spans == (Span(2, 3, "TECH", "knowledge"), Span(2, 4, "SKILL", "skill"), Span(3, 4, "ACT", "knowledge"))
    # one <Labels> control with nested regions: one unnamed layer, the outer span in the tags
    for task in tasks:
        for r in task["annotations"][0]["result"]:
            r["from_name"] = "label"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    (ex,) = read_corpus(path).examples
    assert ex.layers is None and {s.layer for s in ex.spans or ()} == {""} and len(ex.spans or ()) == 3
    assert ex.tags == ("O", "O", "B-SKILL", "I-SKILL", "O", "O")


def test_brat_nested_entities_are_kept_and_converted_without_loss(tmp_path: Path) -> None:
    text = "Die Bonner Universität liegt in Bonn.\n"
    (tmp_path / "doc.txt").write_text(text, encoding="utf-8")
    (tmp_path / "doc.ann").write_text("T1\tORG 4 22\tBonner Universität\nT2\tLOCderiv 4 10\tBonner\n"
                                      "T3\tLOC 32 36\tBonn\n", encoding="utf-8")  # fmt: skip
    corpus = read_corpus(tmp_path / "doc.ann")
    (ex,) = corpus.examples
    assert ex.spans == (Span(1, 2, "LOCderiv"), Span(1, 3, "ORG"), Span(5, 6, "LOC"))
    assert ex.tags == ("O", "B-ORG", "I-ORG", "O", "O", "B-LOC", "O")
    nested = [f for f in corpus.findings if f.kind == "brat-nested"]
    assert nested and "kept" in nested[0].message and f"{tmp_path / 'doc.ann'}:2" in nested[0].message
    out = tmp_path / "out"
    assert main(["convert", str(tmp_path / "doc.ann"), str(out), "--to", "brat"]) == 0
    assert [ex.spans for ex in read_corpus(out).examples] == [ex.spans]
    jsonl = tmp_path / "out.jsonl"
    assert main(["convert", str(tmp_path / "doc.ann"), str(jsonl)]) == 0
    assert read_corpus(jsonl).examples[0].spans == ex.spans


def test_inspect_names_a_layer_without_entities(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A column with no entity is still a layer of the file (the reader's finding says 2 layers); the nesting report
    said "1 layer(s)"."""
    src = tmp_path / "empty-first.conll"
    src.write_text("We\tO\tO\nuse\tO\tO\nPython\tO\tB-Tech\n", encoding="utf-8")
    assert main(["inspect", str(src), "--tag-columns", "1,2", "--layer-names", "skill,tech", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"][0]["nesting"]["layers"] == {"skill": 0, "tech": 1}
    assert main(["inspect", str(src), "--tag-columns", "1,2", "--layer-names", "skill,tech"]) == 0
    assert "2 layer(s): skill 0, tech 1" in capsys.readouterr().out


def test_convert_to_conll_says_which_nested_entities_it_cannot_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "doc.txt").write_text("Die Bonner Universität.\n", encoding="utf-8")
    (tmp_path / "doc.ann").write_text("T1\tORG 4 22\tBonner Universität\nT2\tLOC 4 10\tBonner\n", encoding="utf-8")
    assert main(["convert", str(tmp_path / "doc.ann"), str(tmp_path / "out.conll")]) == 0
    err = capsys.readouterr().err
    assert "warning: 1 overlapping entities are not in conll" in err and "write jsonl or brat" in err


def test_inspect_reports_layers_depth_pairs_and_crossing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _two_columns(tmp_path)
    assert main(["inspect", str(src), "--tag-columns", "1,2", "--lenient", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    nesting = report["files"][0]["nesting"]
    assert nesting["layers"] == {"Skill": 1, "Knowledge": 2} and nesting["across_layers"] == 1
    assert nesting["nested_pairs"] == {"Skill > Knowledge": 1} and nesting["sentences_with_overlap"] == 1
    assert report["files"][0]["entities"] == 3
    assert main(["inspect", str(src), "--tag-columns", "1,2", "--lenient"]) == 0
    text = capsys.readouterr().out
    assert "layers and nesting:" in text and "nested types (outer > inner): Skill > Knowledge 1" in text


def test_a_docbin_span_group_is_a_layer(tmp_path: Path) -> None:
    spacy = pytest.importorskip("spacy")
    from spacy.tokens import DocBin
    from spacy.tokens import Span as SpacySpan

    nlp = spacy.blank("en")
    doc = nlp("Bonn University is in Bonn")
    doc.ents = [SpacySpan(doc, 0, 2, "ORG"), SpacySpan(doc, 4, 5, "LOC")]
    doc.spans["sc"] = [SpacySpan(doc, 0, 2, "ORG"), SpacySpan(doc, 0, 1, "LOC")]
    path = tmp_path / "docs.spacy"
    DocBin(docs=[doc]).to_disk(path)
    (ex,) = read_corpus(path).examples
    assert ex.layers == ("ents", "sc") and ex.tags == ("B-ORG", "I-ORG", "O", "O", "B-LOC")
    assert Span(0, 1, "LOC", "sc") in (ex.spans or ()) and Span(0, 2, "ORG", "sc") in (ex.spans or ())


def test_training_one_layer_of_layered_data_says_it_learns_one_flat_view(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from nerforge.training.layering import warn_flat_view

    examples = read_corpus(_two_columns(tmp_path), ReadOptions(tag_columns=(1, 2), lenient=True)).examples
    with caplog.at_level("WARNING"):
        warn_flat_view(examples, None)  # two layers: a layered model learns them all
    assert not caplog.text
    with caplog.at_level("WARNING"):
        warn_flat_view(examples, "Skill")
    assert "2 layer(s) of entities (Skill, Knowledge)" in caplog.text and "1 of 3" in caplog.text


def test_layer_picks_the_entities_a_flat_model_learns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _two_columns(tmp_path)
    corpus = read_corpus(src, ReadOptions(tag_columns=(1, 2), lenient=True, layer="Knowledge"))
    assert [ex.tags for ex in corpus.examples] == [("O", "O", "O", "B-Knowledge", "I-Knowledge", "O"),
                                                   ("B-Knowledge", "O", "O")]  # fmt: skip
    assert len(corpus.examples[0].spans or ()) == 2  # the other layer is still there
    with pytest.raises(UsageError, match="has no layer 'skill'; it has 'Skill', 'Knowledge'"):
        read_corpus(src, ReadOptions(tag_columns=(1, 2), lenient=True, layer="skill"))
    assert main(["convert", str(src), str(tmp_path / "k.conll"), "--tag-columns", "1,2", "--lenient",
                 "--layer", "nope"]) == 2  # fmt: skip
    assert "has no layer 'nope'" in capsys.readouterr().err


def _layered_entities(text: str) -> list:
    from nerforge.types import Entity

    skill = text.index("testing Docker services")
    docker, rust = text.index("Docker"), text.index("Rust")
    return [Entity("testing Docker services", "Skill", skill, skill + 23, 0.9, "skill"),
            Entity("Docker", "Knowledge", docker, docker + 6, 0.8, "knowledge"),
            Entity("Rust", "Knowledge", rust, rust + 4, 0.7, "knowledge")]  # fmt: skip


def test_tool_formats_keep_a_layered_models_overlapping_entities(tmp_path: Path) -> None:
    from nerforge.prediction.annotation_formats import doccano_line, label_studio_task
    from nerforge.prediction.io import InputRecord

    text = "🚀 We like testing Docker services and Rust ."
    record = InputRecord(index=0, text=text, line=1, fields={})
    entities = _layered_entities(text)
    task = label_studio_task(record, entities)
    assert [r["from_name"] for r in task["predictions"][0]["result"]] == ["skill", "knowledge", "knowledge"]
    # the prediction, accepted as an annotation, reads back into the same two layers
    task["annotations"] = [{"result": task["predictions"][0]["result"]}]
    (tmp_path / "ls.json").write_text(json.dumps([task]), encoding="utf-8")
    (ex,) = read_corpus(tmp_path / "ls.json").examples
    assert ex.layers == ("skill", "knowledge") and len(ex.spans or ()) == 3
    (tmp_path / "dc.jsonl").write_text(json.dumps(doccano_line(record, entities)) + "\n", encoding="utf-8")
    (ex,) = read_corpus(tmp_path / "dc.jsonl").examples  # doccano has no layers: one layer, nesting kept
    assert {(s.label, s.end - s.start) for s in ex.spans or ()} == {("Skill", 3), ("Knowledge", 1)}


def test_a_docbin_of_a_layered_model_holds_each_layer_as_a_span_group(tmp_path: Path) -> None:
    pytest.importorskip("spacy")
    from nerforge.prediction.annotation_formats import write_docbin
    from nerforge.prediction.io import InputRecord

    text = "We like testing Docker services and Rust ."
    path = tmp_path / "out.spacy"
    assert write_docbin(path, [(InputRecord(index=0, text=text, line=1, fields={}), _layered_entities(text))]) == (1, 0)
    (ex,) = read_corpus(path).examples
    assert ex.layers == ("skill", "knowledge")  # doc.ents repeats the first layer: not a layer of its own
    assert ex.tags == ("O", "O", "B-Skill", "I-Skill", "I-Skill", "O", "O", "O")
    assert {(s.label, s.layer) for s in ex.spans or ()} == {("Skill", "skill"), ("Knowledge", "knowledge")}


def test_label_studio_backend_answers_each_layer_in_its_own_control_when_the_project_has_one() -> None:
    pytest.importorskip("fastapi")
    from nerforge.prediction.annotation_formats import label_studio_prediction
    from nerforge.serving.label_studio import parse_label_config

    text = "We like testing Docker services and Rust ."
    two = parse_label_config('<View><Labels name="skill" toName="text"><Label value="Skill"/></Labels>'
                             '<Labels name="knowledge" toName="text"><Label value="knowledge"/></Labels>'
                             '<Text name="text" value="$text"/></View>')  # fmt: skip
    result = label_studio_prediction(_layered_entities(text), from_name=two.from_name, to_name=two.to_name,
                                     label_for=two.label_for, controls=frozenset(two.controls))["result"]  # fmt: skip
    assert [(r["from_name"], r["value"]["labels"]) for r in result] == [
        ("skill", ["Skill"]),
        ("knowledge", ["knowledge"]),
        ("knowledge", ["knowledge"]),
    ]  # the control's spelling
    one = parse_label_config('<View><Labels name="label" toName="text"><Label value="Skill"/>'
                             '<Label value="Knowledge"/></Labels><Text name="text" value="$text"/></View>')  # fmt: skip
    result = label_studio_prediction(_layered_entities(text), from_name=one.from_name, to_name=one.to_name,
                                     label_for=one.label_for, controls=frozenset(one.controls))["result"]  # fmt: skip
    assert {r["from_name"] for r in result} == {"label"} and len(result) == 3  # one control: overlapping regions


def test_a_docbin_group_span_over_whitespace_only_is_counted_not_dropped_silently(tmp_path: Path) -> None:
    spacy = pytest.importorskip("spacy")
    from spacy.tokens import DocBin
    from spacy.tokens import Span as SpacySpan

    doc = spacy.tokens.Doc(spacy.blank("en").vocab, words=["Bonn", "  ", "Uni"], spaces=[True, False, False])
    doc.spans["sc"] = [SpacySpan(doc, 0, 1, "LOC"), SpacySpan(doc, 1, 2, "X")]  # the second: whitespace only
    DocBin(docs=[doc]).to_disk(tmp_path / "d.spacy")
    corpus = read_corpus(tmp_path / "d.spacy")
    assert [s.label for s in corpus.examples[0].spans or ()] == ["LOC"]
    assert any(f.kind == "span-without-words" and f.message.startswith("1 span") for f in corpus.findings)
