"""Choose a recipe's settings by k-fold cross-validation on its training split, never looking at its test split.

    python bench/cv_select.py recipes/softskill.toml --folds 5 \
        --grid training.epochs=20,40 training.learning_rate=1e-4,2e-4

For small data sets without a dev split (softskill has 101 training sentences) the test split is the only held-out
data, and choosing settings by test F1 would overstate them. This script splits the training sentences into
``--folds`` seeded folds; for every combination of the ``--grid`` values it trains on k-1 folds and scores the held-out
fold; each candidate gets the mean and spread of its per-fold micro F1 (strict IOB2). Include the recipe's own
values in the grid to compare against them. Results go to ``bench/results/cv_<recipe>.json`` and a Markdown table
on stdout; the recipe is not changed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from accuracy import _shared_path  # noqa: E402

from nerforge.config import load_config  # noqa: E402
from nerforge.data.writers import write_jsonl  # noqa: E402
from nerforge.io_utils import atomic_write_text  # noqa: E402
from nerforge.training.run import read_splits, train  # noqa: E402


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise SystemExit(f"--grid wants KEY=V1,V2; got {item!r}")
        grid[key] = values.split(",")
    return grid


def folds_of(n: int, k: int, seed: int) -> list[list[int]]:
    """``k`` disjoint folds covering ``range(n)``, shuffled with ``random.Random(seed)``."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [sorted(order[i::k]) for i in range(k)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--grid", nargs="+", default=[], metavar="KEY=V1,V2")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--fold-seed", type=int, default=13)
    parser.add_argument("--seed", type=int, default=0, help="training seed (the same for every run)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    stated = load_config(args.recipe)
    train_files = [_shared_path(p, args.shared) for p in stated.data.files("train")]
    base = {"data.train": train_files if len(train_files) > 1 else train_files[0], "data.dev": None, "data.test": None}
    examples = read_splits(load_config(args.recipe, {**base, "output.dir": "unused"}))["train"]
    folds = folds_of(len(examples), args.folds, args.fold_seed)
    grid = parse_grid(args.grid)
    keys = list(grid)
    candidates = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())] or [{}]
    rows = []
    with tempfile.TemporaryDirectory(prefix="nerforge-cv-") as tmp:
        work = Path(tmp)
        for i, held in enumerate(folds):
            held_set = set(held)
            write_jsonl([ex for j, ex in enumerate(examples) if j not in held_set], work / f"train{i}.jsonl")
            write_jsonl([examples[j] for j in held], work / f"dev{i}.jsonl")
        for candidate in candidates:
            scores, start = [], time.perf_counter()
            for i in range(len(folds)):
                overrides = {
                    **candidate,
                    "data.train": str(work / f"train{i}.jsonl"),
                    "data.dev": None,
                    "data.test": str(work / f"dev{i}.jsonl"),
                    "data.label_names": None,
                    "training.seed": args.seed,
                    "training.num_threads": args.threads,
                    "tracking.enabled": False,
                    "output.dir": str(work / "model"),
                }
                result = train(load_config(args.recipe, overrides))
                scores.append(result.test.micro.f1)
                print(f"{candidate or 'recipe'} fold {i}: F1 {scores[-1]:.4f}", flush=True)
            rows.append(
                {
                    "settings": candidate,
                    "fold_f1": scores,
                    "mean": statistics.fmean(scores),
                    "stdev": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                    "seconds": time.perf_counter() - start,
                }
            )
    best = max(rows, key=lambda r: r["mean"])
    report = {
        "recipe": str(args.recipe),
        "folds": args.folds,
        "fold_seed": args.fold_seed,
        "seed": args.seed,
        "sentences": len(examples),
        "command": "python bench/cv_select.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": rows,
        "best": best["settings"],
    }
    out = args.output or REPO / "bench" / "results" / f"cv_{args.recipe.stem}.json"
    atomic_write_text(out, json.dumps(report, indent=2))
    print("| settings | mean F1 over folds | stdev | seconds |\n|---|---:|---:|---:|")
    for r in rows:
        name = ", ".join(f"`{k}={v}`" for k, v in r["settings"].items()) or "recipe as written"
        print(f"| {name} | {r['mean']:.4f} | {r['stdev']:.4f} | {r['seconds']:.0f} |")
    print(f"best: {best['settings'] or 'recipe as written'}; written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
