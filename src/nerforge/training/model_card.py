"""The model card (``README.md`` of a model directory): data, labels, metrics with their mode and scheme, config,
and how to load the model with nerforge and with plain transformers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerforge.alignment import WindowStats
from nerforge.data.convert import CorpusStats
from nerforge.evaluation import EvalResult
from nerforge.evaluation.report import epochs_markdown
from nerforge.modeling.head import HeadSpec
from nerforge.tags import tag_type
from nerforge.training.dataset import UNSEEN_ENTITIES


@dataclass
class CardData:
    """What the model card says.

    Attributes:
        name: the model directory's name.
        base_model: the encoder that was fine-tuned (``"default"`` resolved to its name).
        tags: the IOB2 tags in id order.
        data: per split (``train``, ``dev``, ``test``): its file and counts.
        windows: per split: what windowing did.
        dev: dev scores of the kept checkpoint (``None`` without dev).
        test: test scores (``None`` without test).
        epochs: the per-epoch table.
        config_yaml: the resolved config.
        max_length, stride, label_all_subwords: preprocessing.
        head: the head (:class:`~nerforge.modeling.head.HeadSpec`): it says which library loads the weights and
            how to run the model (the card reads its fields, never its name).
        summary: the card's first sentence, when the model is not plainly fine-tuned (a distilled student).
        model_version: the model's version (:attr:`~nerforge.model_dir.ModelMeta.model_version`), the string its
            predictions carry in files, on the server and in Label Studio.
    """

    name: str
    base_model: str
    tags: Sequence[str]
    data: Mapping[str, tuple[str, CorpusStats]]
    windows: Mapping[str, WindowStats]
    dev: EvalResult | None
    test: EvalResult | None
    epochs: Sequence[Mapping[str, Any]]
    config_yaml: str
    max_length: int
    stride: int
    label_all_subwords: bool
    notes: list[str] = field(default_factory=list)
    summary: str | None = None
    head: HeadSpec = field(default_factory=HeadSpec)
    model_version: str = ""


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.4f}"


def _scores(title: str, result: EvalResult) -> list[str]:
    m = result.micro
    lines = [
        f"### {title}",
        "",
        f'Entity-level scores, **{result.mode} mode, {result.scheme} scheme** (seqeval `mode="strict"`), whole '
        f"sentences: {result.n_sentences} sentences, {result.n_tokens} tokens.",
        "",
        "| type | precision | recall | F1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in result.per_type.items():
        lines.append(f"| {name} | {s.precision:.4f} | {s.recall:.4f} | {s.f1:.4f} | {s.support} |")
    lines.append(f"| **micro avg** | {m.precision:.4f} | {m.recall:.4f} | **{m.f1:.4f}** | {m.support} |")
    a = result.macro
    lines.append(f"| macro avg | {a.precision:.4f} | {a.recall:.4f} | {a.f1:.4f} | {a.support} |")
    lines += ["", f"Token accuracy: {result.token_accuracy:.4f}.", ""]
    return lines


def render_card(card: CardData) -> str:
    """The model card as markdown, with a Hugging Face metadata header."""
    layers = card.head.layers
    every = [t for _, tags in layers for t in tags] or list(card.tags)
    types = sorted({tag_type(t) for t in every if t != "O"})
    base_is_hub_id = not Path(card.base_model).is_absolute() and card.base_model.count("/") <= 1
    library = card.head.library
    header = ["---", f"library_name: {library}", "pipeline_tag: token-classification", "tags: [ner, nerforge]"]
    if base_is_hub_id:
        header.append(f"base_model: {card.base_model}")
    header += ["---", ""]
    lines = header + [
        f"# {card.name}",
        "",
        (
            card.summary + " "
            if card.summary
            else f"A named-entity recognizer fine-tuned from `{card.base_model}` with nerforge. "
        )
        + f"It tags {len(types)} entity types: {', '.join(f'`{t}`' for t in types) or 'none'}.",
        "",
        *(
            [
                f"Model version: `{card.model_version}` (what its predictions carry in files, on the server and in "
                "Label Studio).",
                "",
            ]
            if card.model_version
            else []
        ),
        "## Labels",
        "",
        *(
            [f"IOB2 tags, in id order: {', '.join(f'`{t}`' for t in card.tags)}.", ""]
            if not layers
            else [
                f"{len(layers)} layers of entities, one tagger each on one encoder (entities of different layers may "
                "overlap; each entity carries its layer):",
                "",
                *(f"- `{name}`: {', '.join(f'`{t}`' for t in tags)}" for name, tags in layers),
                "",
            ]
        ),
        "## Data",
        "",
        "| split | file | sentences | tokens | entities | windows | split sentences | clipped words | "
        "words without subwords | entities without subwords |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for split, (path, summary) in card.data.items():
        w = card.windows.get(split, WindowStats())
        ents = ", ".join(f"{k} {v}" for k, v in summary.entities.items()) or "none"
        lines.append(
            f"| {split} | `{Path(path).name}` | {summary.sentences} | {summary.tokens} | {ents} | {w.windows} | "
            f"{w.windowed_examples} | {w.long_words} | {w.empty_words} | {w.extra.get(UNSEEN_ENTITIES, 0)} |"
        )
    lines += [
        "",
        f"Sentences longer than {card.max_length} subwords are split into windows overlapping by {card.stride} "
        "subwords; every word is labelled by exactly one window. Labels go on "
        + ("every subword of a word." if card.label_all_subwords else "the first subword of each word."),
        "",
        "## Metrics",
        "",
    ]
    if card.dev is not None:
        lines += _scores("Dev (the kept checkpoint)", card.dev)
    if card.test is not None:
        lines += _scores("Test", card.test)
    if card.dev is None and card.test is None:
        lines += ["No dev or test split was given, so nothing was measured.", ""]
    if card.epochs:
        lines += ["### Training", "", *epochs_markdown(card.epochs), ""]
    lines += [f"- {note}" for note in card.notes] + ([""] if card.notes else [])
    lines += [
        "## Use",
        "",
        "With nerforge (same preprocessing as in training: word splitting, windows, label decoding):",
        "",
        "```python",
        "from nerforge.prediction import Tagger",
        "",
        f'tagger = Tagger.load("{card.name}")',
        'print(tagger.predict(["Experience with Python and Kubernetes required."]))',
        "```",
        "",
        f"or `nerforge predict {card.name} input.txt`.",
        "",
        *card.head.usage_note(card.name),
        "## Config",
        "",
        "```yaml",
        card.config_yaml.rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)
