"""A checkout without ``../shared`` beside it passes: every test that needs the real datasets skips.

The checkout is copied to a temporary folder that has no ``shared/`` next to it, and the test files that mention
the shared datasets or the recipes (which point into them) are run there with ``NERFORGE_SHARED`` and
``NERFORGE_DATA_DIR`` unset, as on a fresh clone. A test that silently reads ``../shared`` fails there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_SKIP_DIRS = {".git", ".venv", "runs", "mlruns", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache"}
_MENTIONS = re.compile(r"shared|recipes")


def _copy_checkout(target: Path) -> Path:
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in _SKIP_DIRS or n.endswith(".egg-info")}

    return Path(shutil.copytree(REPO, target, ignore=ignore))


def test_tests_needing_shared_skip_without_it(tmp_path: Path) -> None:
    clone = _copy_checkout(tmp_path / "box" / "checkout")
    assert not (clone.parent / "shared").exists()
    files = sorted(
        str(p.relative_to(clone))
        for p in (clone / "tests").rglob("test_*.py")
        if p.name != Path(__file__).name and _MENTIONS.search(p.read_text(encoding="utf-8"))
    )
    assert "tests/integration/test_recipes.py" in files and "tests/integration/test_shared_datasets.py" in files
    env = {k: v for k, v in os.environ.items() if k not in ("NERFORGE_SHARED", "NERFORGE_DATA_DIR")}
    env["HF_HUB_OFFLINE"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs", *files],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = result.stdout + result.stderr
    # a failure shows its own lines first (the skip list alone once filled the message and hid which test failed)
    failed = [line for line in out.splitlines() if line.startswith(("FAILED", "ERROR", "E "))]
    assert result.returncode == 0, "\n".join(failed[:60]) + "\n...\n" + out[-2000:]
    assert re.search(r"\d+ passed", out), out[-2000:]
    assert "real datasets not found" in out, "the tests that need ../shared should skip with the fixture's reason"
