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
    proc = subprocess.run([str(lint), "--config", str(REPO / "pyproject.toml")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout


# What only modeling/ may read: a head's options and the classes that implement them.
HEAD_KNOWLEDGE = re.compile(
    r"\b(uses_shape|custom_model|is_plain|HeadRuntime|NerforgeTokenClassifier|LinearChainCRF|shape_ids|viterbi)\b"
    r"|\.crf\b|spec\.features"
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
