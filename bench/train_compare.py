"""Train the default encoder with nerforge and with the standard recipe on the same data; compare test F1.

    python bench/train_compare.py                       # conll2003 and softskill, 3 seeds for softskill
    python bench/train_compare.py --datasets softskill --seeds 0

Reads the recipes in ``recipes/`` for nerforge and runs ``bench/standard_recipe.py`` for the baseline (first-subword
softmax, lr 5e-5, 1 epoch at batch 32 on CoNLL-2003; on softskill both batch 8 and batch 32 for 10 epochs, as
measured in the issue). Both are scored by nerforge's strict IOB2 scorer on whole test sentences, after the same
conlleval-style repair of predicted tags. Writes ``bench/results/train_compare.json`` and the table between the
``train_compare`` markers in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from standard_recipe import run_standard_recipe  # noqa: E402

from nerforge.config import load_config  # noqa: E402
from nerforge.model_dir import resolve_model  # noqa: E402
from nerforge.training.dataset import resolve_labels  # noqa: E402
from nerforge.training.run import read_splits, train  # noqa: E402

DATASETS = {
    "conll2003": {
        "recipe": "recipes/conll2003.toml",
        "overrides": {"training.epochs": 1.0},  # the recipe trains 3 epochs; this comparison is at 1 on each side
        "baselines": [{"batch_size": 32, "learning_rate": 5e-5, "epochs": 1.0}],
        "seeds": 1,
    },
    "softskill": {
        "recipe": "recipes/softskill.toml",
        "baselines": [
            {"batch_size": 8, "learning_rate": 5e-5, "epochs": 10.0},
            {"batch_size": 32, "learning_rate": 5e-5, "epochs": 10.0},
        ],
        "seeds": 3,
    },
}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = ""
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f", {torch.cuda.get_device_name(0)} GPU"
    except ImportError:
        pass
    return f"{os.cpu_count()} cores ({cpu}){gpu}, {platform.system()}, Python {platform.python_version()}"


def summary(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def run_dataset(name: str, shared: Path, seeds: list[int], work: Path) -> dict:
    spec = DATASETS[name]
    recipe = REPO / spec["recipe"]
    out: dict = {"recipe": spec["recipe"], "nerforge": [], "baselines": []}
    for seed in seeds[: spec["seeds"]]:
        overrides = {
            **spec.get("overrides", {}),
            "training.seed": seed,
            "tracking.enabled": False,
            "output.dir": str(work / f"{name}-nerforge-{seed}"),
        }
        defaults = load_config(recipe).data  # recipe paths point into ../shared/datasets beside the checkout
        for split in ("train", "dev", "test"):
            path = getattr(defaults, split)
            if path is not None:
                overrides[f"data.{split}"] = str(shared / path.parent.name / path.name)
        config = load_config(recipe, overrides)
        start = time.perf_counter()
        result = train(config)
        seconds = time.perf_counter() - start
        out["nerforge"].append(
            {"seed": seed, "test_f1": result.test.micro.f1, "seconds_total": seconds, "steps": result.global_step}
        )
        print(f"[{name}] nerforge seed {seed}: test F1 {result.test.micro.f1:.4f} ({seconds:.0f} s)", flush=True)
        splits = read_splits(config)
        labels = resolve_labels(splits, config.data.labels)
        for base in spec["baselines"]:
            r = run_standard_recipe(
                resolve_model(config.model.name),
                splits["train"],
                splits["test"],
                labels,
                seed=seed,
                work_dir=str(work / f"{name}-std"),
                **base,
            )
            out["baselines"].append(
                {"seed": seed, **base, "test_f1": r.f1, "train_seconds": r.train_seconds, "steps": r.steps}
            )
            print(f"[{name}] standard {base} seed {seed}: test F1 {r.f1:.4f} ({r.train_seconds:.0f} s)", flush=True)
    out["nerforge_f1"] = summary([r["test_f1"] for r in out["nerforge"]])
    groups: dict[str, list[float]] = {}
    for r in out["baselines"]:
        groups.setdefault(f"batch {r['batch_size']}, lr {r['learning_rate']}, {r['epochs']:g} epochs", []).append(
            r["test_f1"]
        )
    out["baseline_f1"] = {k: summary(v) for k, v in groups.items()}
    return out


def render(results: dict, command: str) -> str:
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {results['machine']}  ",
        f"Date: {results['date']}",
        "",
        "| dataset | system | test F1 (strict IOB2, micro) | seeds |",
        "|---|---|---|---|",
    ]
    for name, r in results["datasets"].items():
        s = r["nerforge_f1"]
        spread = f" ± {s['stdev']:.3f} (min {s['min']:.3f}, max {s['max']:.3f})" if s["n"] > 1 else ""
        lines.append(f"| {name} | nerforge (`{r['recipe']}`) | {s['mean']:.3f}{spread} | {s['n']} |")
        for label, b in r["baseline_f1"].items():
            spread = f" ± {b['stdev']:.3f} (min {b['min']:.3f}, max {b['max']:.3f})" if b["n"] > 1 else ""
            lines.append(f"| {name} | standard recipe ({label}) | {b['mean']:.3f}{spread} | {b['n']} |")
    return "\n".join(lines) + "\n"


def update_docs(path: Path, table: str, marker: str = "train_compare") -> None:
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{start}\n{table}{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + f"\n\n{block}\n"
    from nerforge.io_utils import atomic_write_text

    atomic_write_text(path, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "train_compare.json")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    if not args.shared.is_dir():
        sys.exit(f"datasets not found at {args.shared}; pass --shared")
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "datasets": {}}
    with tempfile.TemporaryDirectory(prefix="nerforge-bench-") as tmp:
        for name in args.datasets:
            results["datasets"][name] = run_dataset(name, args.shared, args.seeds, Path(tmp))
    from nerforge.io_utils import atomic_write_text

    atomic_write_text(args.output, json.dumps(results, indent=2) + "\n")
    command = "python bench/train_compare.py " + " ".join(sys.argv[1:])
    table = render(results, command.strip())
    print(table)
    update_docs(args.docs, table)


if __name__ == "__main__":
    main()
