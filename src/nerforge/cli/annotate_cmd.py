"""``nerforge annotate --terms TERMS POOL -o OUT``: pre-annotations from a list of terms, before any model exists;
a thin wrapper over :mod:`nerforge.prediction.terms` and :func:`nerforge.prediction.files.tag_texts`."""

from __future__ import annotations

from pathlib import Path

import typer

from nerforge.cli.checks import check_inputs


def annotate_cli(
    pool: str = typer.Argument(
        ..., metavar="POOL", help="Texts: .txt (one per line), .csv or .parquet (--text-column) or .jsonl (field text)."
    ),
    terms: Path = typer.Option(
        ...,
        "--terms",
        help="The terms: TERMS.txt (one per line, with --label), TERMS.csv with term and label columns, "
        "or a CSV with one column per type (the header names the types).",
    ),
    label: str | None = typer.Option(
        None, "--label", help="The type of every term of a plain list (or of a CSV without a label column)."
    ),
    output: str = typer.Option(..., "--output", "-o", help="OUT.jsonl, OUT.csv, or the --format's file."),
    output_kind: str | None = typer.Option(
        None,
        "--format",
        metavar="FORMAT",
        help="jsonl, csv (default: from the --output suffix), or an annotation tool's import: label-studio "
        "(OUT.json), doccano (OUT.jsonl), spacy (OUT.spacy DocBin), spacy-json (OUT.json, v2 training JSON).",
    ),
    from_name: str = typer.Option("label", "--from-name", help="Label Studio: the name of the <Labels> tag."),
    to_name: str = typer.Option("text", "--to-name", help="Label Studio: the name of the <Text> tag."),
    doccano_offsets: str = typer.Option(
        "utf-16", "--doccano-offsets", metavar="UNIT", help="doccano: offsets in utf-16 code units or code-points."
    ),
    text_column: str = typer.Option("text", "--text-column", help="CSV column / JSONL field holding the text."),
    whole_file: bool = typer.Option(False, "--whole-file", help="Treat a whole .txt file as one text."),
) -> None:
    """Mark every listed term in the texts of POOL, as suggestions to correct in the first round of annotation.

    Words are matched whole, case- and plural-tolerant (API finds APIs), multi-word terms included, the longest
    term first; a term listed under two types keeps the first.
    """
    check_inputs(pool)
    from nerforge.prediction.files import PredictOutput, PredictSource, tag_texts
    from nerforge.prediction.terms import TermTagger, load_terms

    term_list = load_terms(terms, label)
    for term, kept, dropped in term_list.conflicts[:5]:
        typer.echo(f"warning: {terms}: {term!r} is listed as {kept} and as {dropped}; kept {kept}", err=True)
    if len(term_list.conflicts) > 5:
        typer.echo(f"warning: {terms}: {len(term_list.conflicts) - 5} more terms listed under two types", err=True)
    summary = tag_texts(
        lambda: TermTagger(term_list),
        PredictSource(input_path=pool, text_column=text_column, whole_file=whole_file),
        PredictOutput(path=output, kind=output_kind, from_name=from_name, to_name=to_name, offsets=doccano_offsets),
    )
    typer.echo(f"{len(term_list.terms)} terms ({', '.join(term_list.types)}): {summary.line()}; wrote {summary.output}")


def register(app: typer.Typer) -> None:
    app.command("annotate")(annotate_cli)
