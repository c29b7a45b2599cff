"""Base checkpoints in every format users have: sharded safetensors, and PyTorch .bin only (read with torch's
weights-only loading); nerforge always writes safetensors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerforge.cli import main


def _encoder(directory: Path, *, bin_only: bool = False, **save: object) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from nerforge.model_dir import resolve_model

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("default"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    model = BertModel(config)
    model.save_pretrained(directory, **save)
    if bin_only:  # an older checkpoint: pickled weights only (transformers 5 no longer writes them)
        (directory / "model.safetensors").unlink()
        torch.save(model.state_dict(), directory / "pytorch_model.bin")
    tokenizer.save_pretrained(directory)
    return directory


@pytest.mark.parametrize(
    ("save", "weights"),
    [({"bin_only": True}, "pytorch_model.bin"), ({"max_shard_size": "100KB"}, "model.safetensors.index.json")],
    ids=["bin-only", "sharded-safetensors"],
)
def test_base_checkpoint_formats_train(tmp_path: Path, save: dict[str, object], weights: str) -> None:
    base = _encoder(tmp_path / "base", **save)
    if not (base / weights).is_file():
        pytest.skip(f"this transformers did not write {weights}: {sorted(p.name for p in base.iterdir())}")
    if weights.endswith(".bin"):
        assert not list(base.glob("*.safetensors"))
    train = tmp_path / "train.conll"
    train.write_text("".join(f"We\tO\nuse\tO\n{w}\tB-TECH\n\n" for w in ("Go", "Rust", "Python")), encoding="utf-8")
    out = tmp_path / "model"
    assert main(["train", "--train", str(train), "--output", str(out), "--model", str(base), "--max-steps", "2",
                 "--no-tracking"]) == 0  # fmt: skip
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
