"""``nerforge init DATA... [--output CONFIG]``: inspect the data and write a commented training config for it.

A thin wrapper over :func:`nerforge.data.checks.inspect_files` and :func:`nerforge.config.template.render_config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nerforge.cli.options import given_options, with_data_flags
from nerforge.errors import UsageError


@with_data_flags
def init_cli(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="DATA", help="Annotated files; names with train/dev/valid/test pick the split."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="CONFIG", help="The config file to write.")] = Path(
        "nerforge.toml"
    ),
    model_dir: Annotated[
        str, typer.Option("--model-dir", metavar="DIR", help="output.dir of the config (relative to CONFIG).")
    ] = "model",
    force: Annotated[bool, typer.Option("--force", help="Replace CONFIG if it exists.")] = False,
    *,
    data_flags: dict[str, Any],
) -> None:
    """Inspect data files and write a commented training config for them.

    The config has the detected splits, format, scheme and labels, and every model and training setting at its
    default.
    """
    from nerforge.config import load_config
    from nerforge.config.template import DetectedFile, assign_splits, render_config
    from nerforge.data.checks import inspect_files
    from nerforge.data.readers.options import ReadOptions
    from nerforge.io_utils import atomic_write_text

    if output.suffix.lower() != ".toml":
        raise UsageError(f"--output {output}: name the config *.toml")
    if output.exists() and not force:
        raise UsageError(f"{output} exists; choose another --output or pass --force to replace it")
    missing = [str(p) for p in paths if not p.is_file() and not p.is_dir()]
    if missing:
        raise UsageError(f"no such data file: {', '.join(missing)}")
    options = given_options(data_flags)
    report = inspect_files(paths, ReadOptions(**options))
    detected = [
        DetectedFile(
            Path(f.path), f.format, f.scheme, f.sentences, f.entities, f.entities_by_type, f.documents,
            tuple(x.message for x in f.findings if x.kind == "tag-columns"),
        )
        for f in report.files
    ]
    splits = assign_splits(paths)
    saved = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items() if k != "labels_file"}
    if "labels_file" in options:
        saved["labels_file"] = str(Path(options["labels_file"]).resolve())
    text = render_config(splits, detected, config_path=output.resolve(), read_options=saved, output_dir=model_dir)
    atomic_write_text(output, text)
    load_config(output)  # what was written reads back (a bug here must not reach the user's first train)
    for split, files in splits.items():
        typer.echo(f"{split}: {', '.join(str(p) for p in files)}")
    types = sorted({t for d in detected for t in d.entities_by_type})
    typer.echo(f"labels: {', '.join(types) or 'none found'}")
    typer.echo(f"wrote {output}; train with: nerforge train {output}")


def register(app: typer.Typer) -> None:
    app.command("init")(init_cli)
