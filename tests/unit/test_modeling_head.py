"""Head settings in nerforge.json, and the nerforge model class: strict safetensors round trip, no config.json."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nerforge.errors import ModelError
from nerforge.model_dir import ModelMeta
from nerforge.modeling.head import HeadSpec
from nerforge.modeling.training import head_meta

TAGS = ["O", "B-LOC", "I-LOC"]


@pytest.mark.parametrize(
    ("spec", "name", "custom"),
    [
        (HeadSpec(), "softmax", False),
        (HeadSpec(context_sentences=1), "softmax+context1", False),
        (HeadSpec(crf=True), "crf", True),
        (HeadSpec(features=("shape",)), "shape+softmax", True),
        (HeadSpec(features=("shape",), crf=True, context_sentences=2), "shape+crf+context2", True),
    ],
)
def test_head_names_and_meta_round_trip(spec: HeadSpec, name: str, custom: bool) -> None:
    assert spec.name == name and spec.custom_model is custom
    head, extra = head_meta(spec, model=None)
    meta = ModelMeta(tags=TAGS, max_length=16, stride=4, head=head, extra=extra)
    assert HeadSpec.from_meta(meta) == spec


def test_head_meta_errors_name_the_problem() -> None:
    with pytest.raises(ModelError, match="no settings"):
        HeadSpec.from_meta(ModelMeta(tags=TAGS, max_length=16, stride=4, head="crf"))
    bad = {"head": {"features": [], "crf": False, "context_sentences": 0}}
    with pytest.raises(ModelError, match="does not match"):
        HeadSpec.from_meta(ModelMeta(tags=TAGS, max_length=16, stride=4, head="crf", extra=bad))
    with pytest.raises(ValueError, match="unknown word features"):
        HeadSpec(features=("casing",))
    with pytest.raises(ModelError, match=r"extra.head: crf: Input should be a valid boolean"):
        HeadSpec.from_meta(ModelMeta(tags=TAGS, max_length=16, stride=4, head="crf", extra={"head": {"crf": "yes"}}))


def test_head_model_round_trip_is_strict(tiny_encoder: Path, tmp_path: Path) -> None:
    from nerforge.modeling.model import build_model, load_head_model

    spec = HeadSpec(features=("shape",), crf=True)
    torch.manual_seed(0)
    model = build_model(spec, str(tiny_encoder), TAGS).eval()
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_head_model(tmp_path, spec, TAGS)
    ids = torch.tensor([[101, 2054, 2003, 102]])
    feats = torch.tensor([[0, 3, 9, 0]])
    assert torch.equal(
        model(input_ids=ids, word_features=feats).logits, loaded(input_ids=ids, word_features=feats).logits
    )
    assert loaded.config.id2label == dict(enumerate(TAGS))
    with pytest.raises(ModelError, match="does not describe the head 'crf'"):
        load_head_model(tmp_path, HeadSpec(crf=True), TAGS)  # no shape projection in that head
    with pytest.raises(ModelError, match="labels of config.json differ"):
        load_head_model(tmp_path, spec, [*TAGS, "B-PER", "I-PER"])
    # weights that do not fit the config are refused, not half-loaded
    from safetensors.torch import load_file, save_file

    state = load_file(str(tmp_path / "model.safetensors"))
    state["classifier.weight"] = torch.zeros(7, state["classifier.weight"].shape[1])
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelError):
        load_head_model(tmp_path, spec, TAGS)


def test_nerforge_json_sections_are_typed_and_checked_at_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from nerforge.errors import ModelError
    from nerforge.model_dir import SCHEMA_VERSION, ModelMeta

    spec = HeadSpec(features=("shape",), crf=True, context_sentences=1)
    meta = ModelMeta(tags=TAGS, max_length=16, stride=4, head=spec.name, extra={"head": spec.to_dict()})
    meta.save(tmp_path)
    loaded = ModelMeta.load(tmp_path)
    assert loaded.schema_version == SCHEMA_VERSION
    assert loaded.head_section == {"features": ["shape"], "crf": True, "context_sentences": 1, "shape_dim": 16}
    assert HeadSpec.from_meta(loaded) == spec

    raw = json.loads((tmp_path / "nerforge.json").read_text())
    for broken, message in (
        ({**raw, "extra": {"head": ["shape"]}}, "extra.head must be an object"),
        ({**raw, "extra": {"crf": {"start": [0.0], "end": [0.0], "transitions": [[0.0]]}}}, "does not have"),
        ({**raw, "schema_version": SCHEMA_VERSION + 1}, "newer than this nerforge"),
    ):
        (tmp_path / "nerforge.json").write_text(json.dumps(broken))
        with pytest.raises(ModelError, match=message):
            ModelMeta.load(tmp_path)
    typed = ModelMeta(tags=TAGS, max_length=16, stride=4, head=spec.name, extra={"head": {"context_sentences": "two"}})
    with pytest.raises(ModelError, match="extra.head: context_sentences: Input should be a valid integer"):
        HeadSpec.from_meta(typed)  # the head's one declaration types it
    old = {k: v for k, v in raw.items() if k != "schema_version"}  # a directory written before the schema version
    (tmp_path / "nerforge.json").write_text(json.dumps(old))
    assert HeadSpec.from_meta(ModelMeta.load(tmp_path)) == spec
