"""``nerforge inspect DATA --report DIR``: one self-contained HTML page about a dataset, with its figures.

``DIR/index.html`` opens in any browser without a server or a network: the figures are PNG files beside it and also
embedded in the page (``data:`` URIs), the styles are inline, every text from the data is HTML-escaped. Figures:
entities per type and file, sentence lengths in words and in subwords (with the model's maximum and the window
length marked), entity lengths, the most frequent entities per type, and sentences shared between files. The
counts and findings come from :func:`nerforge.data.checks.inspect_files`, so the page and ``nerforge inspect``
agree.
"""

from __future__ import annotations

import base64
import html
import io
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nerforge.data.checks.report import InspectReport
from nerforge.data.schemes import strict_tags_to_spans
from nerforge.evaluation.plots import tight_layout
from nerforge.io_utils import atomic_directory, atomic_write_bytes, atomic_write_text
from nerforge.outputs import DATA_REPORT
from nerforge.types import Example

REPORT_FILE = "index.html"
TOP_ENTITIES = 15
FIGURE_TYPES = 30  # bars of the entities figure: the most frequent types (XBRL data has hundreds)
TOP_ENTITY_PANELS = 12  # panels of the most-frequent-entities figure
TABLE_TYPES = 50  # types with a table of their most frequent entities on the page
_COLORS = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#b7791f", "#718096")


@dataclass
class FileData:
    """What the figures need from one file: lengths and entity surfaces (the inspect report has only summaries)."""

    name: str
    words: list[int] = field(default_factory=list)
    subwords: list[int] = field(default_factory=list)
    entity_lengths: Counter[int] = field(default_factory=Counter)
    surfaces: dict[str, Counter[str]] = field(default_factory=dict)

    @classmethod
    def from_examples(cls, name: str, examples: Sequence[Example], tokenizer: Any = None) -> FileData:
        data = cls(name)
        for ex in examples:
            data.words.append(len(ex.tokens))
            for span in strict_tags_to_spans(ex.tags):
                data.entity_lengths[span.end - span.start] += 1
                text = " ".join(ex.tokens[span.start : span.end])
                data.surfaces.setdefault(span.label, Counter())[text] += 1
        if tokenizer is not None and examples:
            # counts only (verbose=False: no warning that a text longer than the encoder takes is an error)
            encoded = tokenizer([list(ex.tokens) for ex in examples], is_split_into_words=True, truncation=False,
                                verbose=False)  # fmt: skip
            data.subwords = [len(ids) for ids in encoded["input_ids"]]
        return data


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _most_frequent(counts: Mapping[str, int], limit: int) -> list[str]:
    return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def entities_figure(report: InspectReport) -> Figure:
    """Grouped bars: entities of each type in each file (the :data:`FIGURE_TYPES` most frequent types; the others
    are named in the title by their number)."""
    totals: Counter[str] = Counter()
    for f in report.files:
        totals.update(f.entities_by_type)
    types = sorted(_most_frequent(totals, FIGURE_TYPES))
    fig = Figure(figsize=(min(16.0, max(6.0, 0.8 * len(types) * max(1, len(report.files)) + 2)), 4.5))
    ax = fig.subplots()
    width = 0.8 / max(1, len(report.files))
    for i, f in enumerate(report.files):
        xs = [k + (i - (len(report.files) - 1) / 2) * width for k in range(len(types))]
        ax.bar(xs, [f.entities_by_type.get(t, 0) for t in types], width, label=Path(f.path).name,
               color=_COLORS[i % len(_COLORS)])  # fmt: skip
    ax.set_xticks(
        range(len(types)), types, rotation=30 if len(types) > 6 else 0, ha="right" if len(types) > 6 else "center"
    )
    ax.set_ylabel("entities")
    hidden = len(totals) - len(types)
    ax.set_title(
        "Entities per type and file" + (f" ({len(types)} most frequent of {len(totals)} types)" if hidden else "")
    )
    if report.files:
        # above the plot, not over the bars (a legend placed "best" can still cover a bar)
        ax.legend(
            loc="lower left", bbox_to_anchor=(0.0, 1.08), ncols=min(4, len(report.files)), fontsize=8, frameon=False
        )
    tight_layout(fig)
    return fig


def lengths_figure(files: Sequence[FileData], *, max_positions: int | None, window: int | None) -> Figure:
    """Histograms of sentence lengths: words, and subwords with the model's maximum (and the window) marked."""
    with_subwords = any(f.subwords for f in files)
    fig = Figure(figsize=(11.0 if with_subwords else 6.0, 4.0))
    axes = fig.subplots(1, 2 if with_subwords else 1, squeeze=False)[0]
    panels = [("words", "sentence length in words")] + (
        [("subwords", "sentence length in subwords")] if with_subwords else []
    )
    for ax, (key, title) in zip(axes, panels, strict=True):
        for i, f in enumerate(files):
            values = getattr(f, key)
            if values:
                ax.hist(values, bins=40, alpha=0.55, label=f.name, color=_COLORS[i % len(_COLORS)])
        if key == "subwords":
            longest = max((max(f.subwords) for f in files if f.subwords), default=0)
            right = max(longest, 1) * 1.1
            for limit, style, label in ((max_positions, "--", "model maximum"), (window, ":", "window")):
                if not limit:
                    continue
                if limit <= 2 * right:
                    right = max(right, limit * 1.05)
                    ax.axvline(limit, color="red" if style == "--" else "black", ls=style, label=f"{label} {limit}")
                else:  # far beyond the data: say so instead of squeezing the histogram into a corner
                    ax.plot([], [], " ", label=f"{label} {limit} (every sentence is shorter)")
            ax.set_xlim(0, right)
        ax.set_yscale("log")
        ax.set_xlabel(title)
        ax.set_ylabel("sentences (log)")
        ax.legend(fontsize=8)
    fig.suptitle("Sentence lengths")
    tight_layout(fig)
    return fig


def entity_lengths_figure(files: Sequence[FileData]) -> Figure:
    """Bars: how many entities are 1, 2, ... words long (longer than 10 pooled)."""
    fig = Figure(figsize=(7.0, 3.8))
    ax = fig.subplots()
    width = 0.8 / max(1, len(files))
    buckets = list(range(1, 11))
    for i, f in enumerate(files):
        counts = [f.entity_lengths.get(n, 0) for n in buckets[:-1]]
        counts.append(sum(v for k, v in f.entity_lengths.items() if k >= buckets[-1]))
        xs = [b + (i - (len(files) - 1) / 2) * width for b in buckets]
        ax.bar(xs, counts, width, label=f.name, color=_COLORS[i % len(_COLORS)])
    ax.set_xticks(buckets, [str(b) for b in buckets[:-1]] + [f"{buckets[-1]}+"])
    ax.set_xlabel("entity length in words")
    ax.set_ylabel("entities")
    ax.set_title("Entity lengths")
    ax.legend(fontsize=8)
    tight_layout(fig)
    return fig


def top_entities_figure(surfaces: Mapping[str, Counter[str]], top: int = TOP_ENTITIES) -> Figure:
    """One horizontal bar panel per type: its most frequent entity texts over all files."""
    types = sorted(_most_frequent({t: sum(c.values()) for t, c in surfaces.items()}, TOP_ENTITY_PANELS))
    cols = min(3, max(1, len(types)))
    rows = max(1, (len(types) + cols - 1) // cols)
    fig = Figure(figsize=(5.0 * cols, 0.28 * top * rows + 1.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(types):
            ax.set_visible(False)
            continue
        common = surfaces[types[k]].most_common(top)[::-1]
        ax.barh([_short(t) for t, _ in common], [n for _, n in common], color=_COLORS[k % len(_COLORS)])
        ax.set_title(types[k])
        ax.tick_params(axis="y", labelsize=8)
    hidden = len(surfaces) - len(types)
    fig.suptitle(
        "Most frequent entities per type"
        + (f" (the {len(types)} most frequent types of {len(surfaces)})" if hidden else "")
    )
    tight_layout(fig)
    return fig


def overlap_figure(report: InspectReport) -> Figure:
    """Bars: sentences of a later file also in an earlier one (e.g. test sentences seen in train)."""
    fig = Figure(figsize=(7.0, 3.0))
    ax = fig.subplots()
    if report.overlaps:
        labels = [f"{Path(o.path).name} in {Path(o.other).name}" for o in report.overlaps]
        ax.barh(labels, [o.sentences for o in report.overlaps], color="#c53030")
        ax.set_xlabel("sentences with the same tokens")
    else:
        ax.text(0.5, 0.5, "no sentence occurs in two files", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    ax.set_title("Overlap between files")
    tight_layout(fig)
    return fig


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1a202c;
padding:0 1rem}h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #e2e8f0}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}td,th{border:1px solid #e2e8f0;padding:.25rem .6rem;
text-align:left}th{background:#f7fafc}img{max-width:100%;height:auto;border:1px solid #edf2f7}
.note{color:#4a5568;font-size:.9rem}.error{color:#c53030}.warning{color:#b7791f}
"""


def render_html(
    report: InspectReport,
    figures: Mapping[str, tuple[str, bytes]],
    files: Sequence[FileData],
    *,
    title: str,
) -> str:
    """The page: summary table, figures (embedded), most frequent entities as tables, findings per kind."""
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">Written by <code>nerforge inspect --report</code> on {time.strftime("%Y-%m-%d %H:%M")}'
        + (
            f"; subwords counted with the tokenizer <code>{html.escape(report.tokenizer)}</code>"
            if report.tokenizer
            else ""
        )
        + ".</p>",
        "<h2>Files</h2>",
        _table(
            ["file", "format", "scheme", "documents", "sentences", "tokens", "entities"],
            [[f.path, f.format, f.scheme, f.documents or "–", f.sentences, f.tokens, f.entities] for f in report.files],
        ),
    ]
    for key, (caption, png) in figures.items():
        data = base64.b64encode(png).decode("ascii")
        parts += [
            f"<h2>{html.escape(caption)}</h2>",
            f'<img src="data:image/png;base64,{data}" alt="{html.escape(caption)}" id="fig-{html.escape(key)}">',
        ]
    surfaces: dict[str, Counter[str]] = {}
    for f in files:
        for label, counter in f.surfaces.items():
            surfaces.setdefault(label, Counter()).update(counter)
    if surfaces:
        parts.append("<h2>Most frequent entities</h2>")
        shown = sorted(_most_frequent({t: sum(c.values()) for t, c in surfaces.items()}, TABLE_TYPES))
        if len(shown) < len(surfaces):
            parts.append(f'<p class="note">The {len(shown)} most frequent of {len(surfaces)} types.</p>')
        for label in shown:
            parts.append(f"<h3>{html.escape(label)}</h3>")
            parts.append(_table(["entity", "count"], surfaces[label].most_common(TOP_ENTITIES)))
    parts.append("<h2>Findings</h2>")
    found = [(f.path, kind, n) for f in report.files for kind, n in sorted(f.findings_by_kind.items())]
    if found:
        parts.append(_table(["file", "finding", "count"], found))
        examples = [(x.path + (f":{x.line}" if x.line else ""), x.kind, x.message) for f in report.files
                    for x in f.findings[:50]]  # fmt: skip
        parts.append(_table(["where", "finding", "message"], examples))
    else:
        parts.append("<p>No findings.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_data_report(
    out_dir: str | Path,
    report: InspectReport,
    examples: Mapping[str, Sequence[Example]],
    *,
    tokenizer: Any = None,
    window: int | None = None,
) -> Path:
    """Write ``out_dir/index.html`` and its PNG figures (the directory replaced as a whole); the page's path.

    ``examples`` maps each file of ``report`` (its ``path``) to its IOB2 examples; ``window`` is the training
    window length to mark on the subword histogram (the model's maximum is marked too).
    """
    files = [FileData.from_examples(Path(name).name, exs, tokenizer) for name, exs in examples.items()]
    max_positions = getattr(tokenizer, "model_max_length", None) if tokenizer is not None else None
    if max_positions is not None and max_positions > 100_000:  # "no limit" sentinel of some tokenizers
        max_positions = None
    surfaces: dict[str, Counter[str]] = {}
    for f in files:
        for label, counter in f.surfaces.items():
            surfaces.setdefault(label, Counter()).update(counter)
    builders = {
        "entities": ("Entities per type and file", lambda: entities_figure(report)),
        "lengths": ("Sentence lengths", lambda: lengths_figure(files, max_positions=max_positions, window=window)),
        "entity_lengths": ("Entity lengths", lambda: entity_lengths_figure(files)),
        "top_entities": ("Most frequent entities per type", lambda: top_entities_figure(surfaces)),
        "overlap": ("Overlap between files", lambda: overlap_figure(report)),
    }
    figures = {key: (caption, _png(build())) for key, (caption, build) in builders.items()}
    title = "Data report: " + ", ".join(Path(f.path).name for f in report.files)
    out = Path(out_dir)
    with atomic_directory(out, kind=DATA_REPORT) as tmp:
        for key, (_, png) in figures.items():
            atomic_write_bytes(tmp / f"{key}.png", png)
        atomic_write_text(tmp / REPORT_FILE, render_html(report, figures, files, title=title))
    return out / REPORT_FILE
