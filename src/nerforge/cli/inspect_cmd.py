"""``nerforge inspect PATH...``: a data doctor. Counts, detected scheme and every quirk found, per file.

It calls :func:`nerforge.config.inspect.inspect_data` and renders the report (a compact table and findings grouped
by kind, or one JSON object with ``--json``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any

import typer

from nerforge.cli.options import with_read_options
from nerforge.data.checks import FileReport, InspectReport
from nerforge.data.readers.options import ReadOptions
from nerforge.types import Finding

SHOWN_PER_KIND = 5
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def _table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
    return out


SHOWN_TYPES = 8  # a summary row names the most frequent types; data with hundreds (XBRL) gets a count of the rest


def _types(by_type: dict[str, int]) -> str:
    ordered = sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0]))
    text = " ".join(f"{t}:{n}" for t, n in ordered[:SHOWN_TYPES])
    rest = len(ordered) - SHOWN_TYPES
    return f"{text} ... and {rest} more types ({len(ordered)} in all; --json lists them)" if rest > 0 else text


def _where(f: Finding) -> str:
    return f"{f.path}:{f.line}" if f.line is not None else f.path


def _lengths_line(f: FileReport) -> str:
    parts = []
    for stats in f.lengths.values():
        text = f"{stats.unit} max {stats.max}, median {stats.median:g}, p95 {stats.p95}"
        if stats.max_length is not None:
            text += (
                f"; {stats.over_max} sentence(s) over {stats.max_length}, "
                f"{stats.entities_lost} entit{'y' if stats.entities_lost == 1 else 'ies'} lost to truncation"
            )
        parts.append(text)
    return f"  {f.path}: " + " | ".join(parts)


def _nesting_lines(path: str, n: dict[str, Any]) -> list[str]:
    layers = ", ".join(f"{name or '(unnamed)'} {count}" for name, count in n["layers"].items())
    out = [f"  {path}: {len(n['layers'])} layer(s): {layers}",
           f"    within a layer: {n['nested']} span(s) inside another (depth up to {n['max_depth']}), "
           f"{n['crossing']} crossing pair(s); across layers: {n['across_layers']} pair(s) share words; "
           f"{n['sentences_with_overlap']} sentence(s) with overlapping spans"]  # fmt: skip
    pairs = list(n["nested_pairs"].items())
    if pairs:
        out.append("    nested types (outer > inner): " + ", ".join(f"{k} {v}" for k, v in pairs[:8])
                   + (f" and {len(pairs) - 8} more" if len(pairs) > 8 else ""))  # fmt: skip
    return out


def render_text(report: InspectReport, shown: int = SHOWN_PER_KIND) -> str:
    """The human report: a summary table, lengths, overlaps, then findings grouped by kind (first ``shown`` each)."""
    header = ["file", "format", "scheme", "docs", "sentences", "tokens", "entities", "types"]
    rows = [header]
    for f in report.files:
        rows.append(
            [f.path, f.format, f.scheme, str(f.documents or "-"), str(f.sentences), str(f.tokens), str(f.entities)]
            + [_types(f.entities_by_type)]
        )
    total = report.total()
    if len(report.files) > 1:
        rows.append(
            ["total", "", "", "", str(total["sentences"]), str(total["tokens"]), str(total["entities"])]
            + [_types(total["entities_by_type"])]
        )
    lines = _table(rows, right={3, 4, 5, 6})
    lines += ["", "lengths" + (f" (tokenizer {report.tokenizer})" if report.tokenizer else "") + ":"]
    lines += [_lengths_line(f) for f in report.files]
    nested = [f for f in report.files if f.nesting is not None]
    if nested:
        lines += ["", "layers and nesting:"]
        lines += [line for f in nested for line in _nesting_lines(f.path, f.nesting or {})]
    if report.overlaps:
        lines += ["", "overlap between files (same token sequence):"]
        lines += [f"  {o.sentences} sentence(s) of {o.path} also in {o.other}" for o in report.overlaps]
    lines += ["", *render_findings(report.files, shown)]
    return "\n".join(lines).rstrip() + "\n"


def render_findings(files: list[FileReport], shown: int = SHOWN_PER_KIND) -> list[str]:
    """Findings grouped by kind, errors first: a count line, the first ``shown`` with ``path:line``, then the rest."""
    counts: dict[str, int] = defaultdict(int)
    kept: dict[str, list[Finding]] = defaultdict(list)
    for f in files:
        for kind, n in f.findings_by_kind.items():
            counts[kind] += n
        for finding in f.findings:
            kept[finding.kind].append(finding)
    if not counts:
        return ["no findings"]

    def order(kind: str) -> tuple[int, str]:
        severity = kept[kind][0].severity if kept[kind] else "info"
        return _SEVERITY_ORDER.get(severity, 3), kind

    lines = ["findings:"]
    for kind in sorted(counts, key=order):
        examples = kept[kind][:shown]
        severity = examples[0].severity if examples else "info"
        lines.append(f"{kind} ({severity}): {counts[kind]}")
        lines += [f"  {_where(x)}: {x.message}" for x in examples]
        if counts[kind] > len(examples):
            lines.append(f"  ... and {counts[kind] - len(examples)} more")
    return lines


def render_json(report: InspectReport) -> str:
    """Exactly one JSON object (see ``InspectReport.to_dict``)."""
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2)


@with_read_options
def inspect_cli(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="Data files to check (e.g. train dev test).")],
    tokenizer: Annotated[
        str | None,
        typer.Option(
            "--tokenizer",
            metavar="MODEL",
            help="Count subwords with this tokenizer: 'default' (the embedded MiniLM), a model directory or a hub id.",
        ),
    ] = None,
    max_length: Annotated[
        int | None,
        typer.Option(
            "--max-length",
            min=1,
            help="Count what a naive truncation at N would lose: subwords with --tokenizer (default: its maximum), "
            "else words.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the text report.")] = False,
    max_findings: Annotated[
        int, typer.Option("--max-findings", min=1, help="Findings kept per kind and file (all are counted).")
    ] = 50,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="DIR",
            help="Also write DIR/index.html: one self-contained page with plots (entities per type and file, "
            "sentence lengths in words and subwords, entity lengths, frequent entities, overlap); subwords are "
            "counted with --tokenizer, default the embedded one.",
        ),
    ] = None,
    *,
    options: ReadOptions,
) -> None:
    """Check data files: counts, scheme, and quirks (I- starts, corrupt tags, odd tokens, duplicates, lengths)."""
    from nerforge.config.inspect import inspect_data

    result = inspect_data(
        paths, options, tokenizer=tokenizer, max_length=max_length, max_findings=max_findings, report_dir=report_dir
    )
    typer.echo(render_json(result.report) if as_json else render_text(result.report), nl=as_json)
    if result.page is not None:
        typer.echo(f"report: {result.page}", err=as_json)


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect_cli)
