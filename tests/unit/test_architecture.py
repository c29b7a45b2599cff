"""The architecture holds: layers only point down, no package has an import cycle, and no module outside
``nerforge.modeling`` branches on head options (the layers are declared in pyproject.toml, explained in
docs/architecture.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "nerforge"


def test_import_layers_and_no_cycles() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    proc = subprocess.run(
        [str(lint), "--config", str(REPO / "pyproject.toml")], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "3 kept, 0 broken" in proc.stdout


# What only modeling/ may read: a head's options and the classes that implement them.
HEAD_KNOWLEDGE = re.compile(
    r"\b(uses_shape|custom_model|is_plain|HeadRuntime|NerforgeTokenClassifier|LinearChainCRF|shape_ids|viterbi)\b"
    r"|\.crf\b|spec\.features|context_sentences"
)


def test_no_module_outside_modeling_branches_on_head_options() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "modeling" or rel.name == "model_dir.py":  # the head, and the file format's typed fields
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if HEAD_KNOWLEDGE.search(line) and not line.lstrip().startswith("#"):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)


def test_every_command_module_is_registered_and_imports() -> None:
    """A command is one module in cli/ named in the command list; one that fails to import stops the CLI loudly
    instead of vanishing from it (issue 26)."""
    from nerforge.cli import _COMMANDS, app

    modules = sorted(p.stem.removesuffix("_cmd") for p in (SRC / "cli").glob("*_cmd.py"))
    assert sorted(_COMMANDS) == modules
    registered = {c.name for c in app.registered_commands}
    assert set(_COMMANDS) <= registered


def test_a_command_module_that_fails_to_import_is_an_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import importlib

    import pytest

    import nerforge.cli as cli

    real = importlib.import_module

    def broken(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "nerforge.cli.bench_cmd":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    import typer

    monkeypatch.setattr(cli.importlib, "import_module", broken)
    monkeypatch.setattr(cli, "app", typer.Typer())  # the real app keeps its commands
    with pytest.raises(ModuleNotFoundError):
        cli._register()
