"""``bench/layered_seeds.py --combine``: the flat models of one run and the layered models of another, run side by
side, tabulated per seed as one run; only seeds with both, and no model counted twice."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def seeds_module() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("layered_seeds_under_test", BENCH / "layered_seeds.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def results_file(path: Path, command: str, runs: dict, epochs: int = 3) -> str:
    path.write_text(
        json.dumps({"command": command, "machine": "m", "epochs": epochs, "datasets": {"skillspan": runs}}),
        encoding="utf-8",
    )
    return str(path)


def layered(skill: float, knowledge: float) -> dict:
    return {"flat": {}, "layered": {"f1": {"skill": skill, "knowledge": knowledge}}}


def flat(skill: float, knowledge: float) -> dict:
    return {"flat": {"skill": {"f1": skill}, "knowledge": {"f1": knowledge}}}


def test_combined_runs_pair_each_seeds_models(seeds_module: ModuleType, tmp_path: Path) -> None:
    lay = results_file(tmp_path / "l.json", "layered run", {"1": layered(0.5, 0.6), "2": layered(0.4, 0.7),
                                                           "3": layered(0.9, 0.9)})  # fmt: skip
    both = results_file(tmp_path / "b.json", "both run", {"1": {**layered(0.1, 0.1), **flat(0.4, 0.65)}})
    flats = results_file(tmp_path / "f.json", "flat run", {"2": flat(0.45, 0.6), "4": flat(0.3, 0.3)})
    combined = seeds_module.combine([lay, f"flat:{both}", flats])
    runs = combined["datasets"]["skillspan"]
    assert runs["1"]["layered"]["f1"] == {"skill": 0.5, "knowledge": 0.6}  # not the "both" file's layered model
    assert runs["1"]["flat"]["skill"]["f1"] == 0.4
    table = seeds_module.render(combined)
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    seeds = [row.split("|")[1].strip() for row in rows[1:]]
    assert seeds[:2] == ["1", "2"] and "mean of 2" in seeds[2]  # seeds 3 and 4 lack a flat or a layered model
    assert "+10.00" in rows[1] and "-5.00" in rows[1] and "-5.00" in rows[2] and "+10.00" in rows[2]
    assert "**+2.50**" in rows[3]  # skill: (+10 - 5) / 2
    assert "layered run" in combined["command"] and "`both run` (flat models)" in combined["command"]


def test_a_model_twice_or_other_epochs_is_refused(seeds_module: ModuleType, tmp_path: Path) -> None:
    one = results_file(tmp_path / "a.json", "a", {"1": layered(0.5, 0.6)})
    two = results_file(tmp_path / "b.json", "b", {"1": layered(0.4, 0.6)})
    with pytest.raises(SystemExit, match="seed 1 has a layered model in an earlier file"):
        seeds_module.combine([one, two])
    other = results_file(tmp_path / "c.json", "c", {"2": flat(0.4, 0.6)}, epochs=10)
    with pytest.raises(SystemExit, match="epochs 10"):
        seeds_module.combine([one, other])


def test_combine_writes_the_docs_only_where_asked(tmp_path: Path) -> None:
    """Without --docs-marker a combined table replaced the seeds' own table of docs/benchmarks.md."""
    import subprocess

    lay = results_file(tmp_path / "l.json", "l", {"1": layered(0.5, 0.6)})
    flats = results_file(tmp_path / "f.json", "f", {"1": flat(0.4, 0.6)})
    docs = tmp_path / "bench.md"
    docs.write_text("<!-- layered-seeds:start -->\nseeds\n<!-- layered-seeds:end -->\n", encoding="utf-8")
    before = docs.read_text(encoding="utf-8")
    base = [sys.executable, str(BENCH / "layered_seeds.py"), "--combine", lay, flats, "--docs", str(docs)]
    done = subprocess.run([*base, "--output", str(tmp_path / "a.json")], capture_output=True, text=True)
    assert done.returncode == 0 and "+10.00" in done.stdout and docs.read_text(encoding="utf-8") == before
    done = subprocess.run([*base, "--output", str(tmp_path / "b.json"), "--docs-marker", "layered-seeds"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0 and "+10.00" in docs.read_text(encoding="utf-8")


def test_the_table_gives_a_lower_bound_of_each_layers_difference(seeds_module: ModuleType, tmp_path: Path) -> None:
    """Differences of +1, +2, +3 points over three seeds: mean 2, standard error 1/sqrt(3), and the one-sided 95 %
    paired t bound 2 - 2.919986 / sqrt(3) = +0.31 (t with 2 degrees of freedom); knowledge -1, -2, -3: -3.69."""
    runs = {str(seed): {**layered(0.40 + d, 0.60 - d), **flat(0.40, 0.60)} for seed, d in ((1, 0.01), (2, 0.02),
                                                                                          (3, 0.03))}  # fmt: skip
    table = seeds_module.render(seeds_module.combine([results_file(tmp_path / "r.json", "r", runs)]))
    bound = next(line for line in table.splitlines() if line.startswith("| 95 % lower bound"))
    assert [cell.strip() for cell in bound.split("|") if cell.strip()][1:] == ["+0.31", "-3.69"]
    assert seeds_module.lower_bound([0.01]) is None
