"""Accuracy of every recipe: nerforge vs the standard recipe, same encoder, same data, same budget.

    python bench/accuracy.py --recipes softskill green_job_entities      # chosen recipes
    python bench/accuracy.py --all                                        # every recipe in BUDGETS
    python bench/accuracy.py --recipes finer_ord --seeds 0 1 2 --max-train 1000
    python bench/accuracy.py --defaults --all                             # flags-only defaults vs standard

``--defaults`` trains what a user gets from ``nerforge train --train A --dev B --test C`` and nothing else: the
recipe's data section only (files, reading options, labels; the budget's sample), every model and training setting
at its default (the budget's epochs where it sets them). The standard recipe then trains with the same sentences,
epochs and batch size; a standard result already stored for exactly those is reused instead of trained again.

For each recipe, nerforge trains with the recipe as written except for the budget below (``data.sample`` keeps a
seeded random subset of train/dev sentences, seed 13; ``training.epochs`` caps the passes; MLflow is off), and the
standard recipe (``bench/standard_recipe.py``: first-subword softmax, ``truncation=True``, lr 5e-5, no warm-up, no
dev set) trains the same encoder on the same training sentences for the same number of epochs at the same batch
size. Both are scored on the recipe's whole test split by nerforge's scorer: entity F1, strict IOB2, micro.

Results are merged into ``bench/results/accuracy.json`` (one entry per recipe; a rerun replaces it), and the table
is written between the ``accuracy`` markers of ``docs/benchmarks.md`` and ``docs/accuracy.md``, with a bar plot in
``docs/accuracy.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")

from standard_recipe import run_standard_recipe  # noqa: E402
from train_compare import machine, update_docs  # noqa: E402

from nerforge.config import TrainConfig, load_config  # noqa: E402
from nerforge.io_utils import atomic_write_text  # noqa: E402
from nerforge.model_dir import resolve_model  # noqa: E402
from nerforge.training.dataset import resolve_labels  # noqa: E402
from nerforge.training.run import read_splits, train  # noqa: E402

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Budget:
    """What one recipe gets on a 2-core CPU: at most ``train``/``dev`` sentences (seeded sample), ``epochs`` passes,
    and ``seeds`` seeds by default (``None``: the recipe's own value)."""

    train: int | None = 1000
    dev: int | None = 300
    epochs: float | None = 2.0
    seeds: int = 1


# Small data sets: whole, 3 seeds. Big ones: a seeded sample of 1,000 training sentences, 2 epochs, 1 seed.
BUDGETS: dict[str, Budget] = {
    "softskill": Budget(train=None, dev=None, epochs=None, seeds=3),
    "green_job_entities": Budget(train=None, dev=None, epochs=10.0, seeds=3),
    "galal_job_skills": Budget(train=None, dev=None, epochs=4.0),
    "tech_terms": Budget(train=400, dev=100, epochs=2.0),
    "skillspan_skill": Budget(),
    "skillspan_knowledge": Budget(),
    "finer_ord": Budget(),
    "ncbi_disease": Budget(),
    "bc5cdr": Budget(),
    "conll2003": Budget(),
    "conll2002_es": Budget(),
    "conll2002_nl": Budget(),
    "wikiann_de": Budget(),
    "germeval2014": Budget(),
    "factrueval": Budget(),
}


def _shared_path(path: Path, shared: Path) -> str:
    parts = path.parts
    return str(shared.joinpath(*parts[parts.index("datasets") + 1 :])) if "datasets" in parts else str(path)


def budget_config(recipe: Path, budget: Budget, *, shared: Path, seed: int, threads: int, out: Path) -> TrainConfig:
    """The recipe with the bench's budget, data under ``shared``, tracking off and output in ``out``."""
    stated = load_config(recipe)
    overrides: dict[str, object] = {
        "training.seed": seed,
        "training.num_threads": threads,
        "tracking.enabled": False,
        "output.dir": str(out),
    }
    for name in SPLITS:
        files = stated.data.files(name)
        if files:
            moved = [_shared_path(p, shared) for p in files]
            overrides[f"data.{name}"] = moved if isinstance(getattr(stated.data, name), list) else moved[0]
    if budget.epochs is not None:
        overrides["training.epochs"] = budget.epochs
    for name in ("train", "dev"):
        size = getattr(budget, name)
        if size is not None:
            overrides[f"data.sample.{name}"] = size
    return load_config(recipe, overrides)


def defaults_config(recipe: Path, budget: Budget, *, shared: Path, seed: int, threads: int, out: Path) -> TrainConfig:
    """Flags-only training on the recipe's data: its ``[data]`` section (moved under ``shared``), the budget's sample
    and epochs, and the defaults for everything else (head, learning rate, batch size, max_length...)."""
    stated = load_config(recipe)
    data = stated.data.model_dump(mode="json", exclude_none=True)
    for name in SPLITS:
        files = stated.data.files(name)
        if files:
            moved = [_shared_path(p, shared) for p in files]
            data[name] = moved if isinstance(getattr(stated.data, name), list) else moved[0]
    sample = {name: getattr(budget, name) for name in ("train", "dev") if getattr(budget, name) is not None}
    if sample:
        data["sample"] = sample
    training: dict[str, object] = {"seed": seed, "num_threads": threads}
    if budget.epochs is not None:
        training["epochs"] = budget.epochs
    return TrainConfig.model_validate(
        {"data": data, "training": training, "tracking": {"enabled": False}, "output": {"dir": str(out)}}
    )


def summary(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def train_nerforge(name: str, system: str, config: TrainConfig, seed: int) -> dict:
    """Train nerforge with ``config``; its result row (test F1 of the saved model, seconds, optimizer steps)."""
    start = time.perf_counter()
    result = train(config)
    seconds = time.perf_counter() - start
    assert result.test is not None
    print(f"[{name}] {system} seed {seed}: test F1 {result.test.micro.f1:.4f} ({seconds:.0f} s)", flush=True)
    return {"seed": seed, "test_f1": result.test.micro.f1, "seconds": round(seconds, 1), "steps": result.global_step}


def train_standard(name: str, config: TrainConfig, splits: dict, labels: list[str], seed: int, work: Path) -> dict:
    """The standard recipe on the sentences nerforge trained on, same epochs and batch size; its result row."""
    start = time.perf_counter()
    std = run_standard_recipe(
        resolve_model(config.model.name), splits["train"], splits["test"], labels,
        batch_size=config.training.batch_size, learning_rate=5e-5, epochs=config.training.epochs,
        seed=seed, work_dir=str(work / f"{name}-std"),
    )  # fmt: skip
    seconds = time.perf_counter() - start
    print(f"[{name}] standard seed {seed}: test F1 {std.f1:.4f} ({seconds:.0f} s)", flush=True)
    return {"seed": seed, "test_f1": std.f1, "seconds": round(seconds, 1), "steps": std.steps}


def budget_facts(config: TrainConfig, budget: Budget, splits: dict, lr_key: str) -> dict:
    """What a result was trained with (the ``budget`` of its entry)."""
    return {
        "train_sentences": len(splits["train"]),
        "sampled": budget.train is not None and budget.train <= len(splits["train"]),
        "epochs": config.training.epochs,
        "batch_size": config.training.batch_size,
        lr_key: config.training.learning_rate,
        "max_length": config.model.max_length,
        "head": head_name(config),
    }


def with_summaries(entry: dict) -> dict:
    entry["nerforge_f1"] = summary([r["test_f1"] for r in entry["nerforge"]])
    if entry["standard"]:
        entry["standard_f1"] = summary([r["test_f1"] for r in entry["standard"]])
    return entry


def _stored_standard(stored: dict | None, config: TrainConfig, train_sentences: int, seed: int) -> dict | None:
    """A standard-recipe result already measured with the same sentences, epochs, batch size and seed."""
    if not stored or "budget" not in stored:
        return None
    b = stored["budget"]
    if (b["train_sentences"], b["epochs"], b["batch_size"]) != (
        train_sentences,
        config.training.epochs,
        config.training.batch_size,
    ):
        return None
    return next((r for r in stored.get("standard", []) if r["seed"] == seed), None)


def run_recipe(
    name: str, budget: Budget, seeds: list[int], args: argparse.Namespace, work: Path, stored: dict | None = None
) -> dict:
    """Train nerforge (the recipe, or with ``--defaults`` the flags-only defaults) and the standard recipe for every
    seed; test F1 of each."""
    recipe = REPO / "recipes" / f"{name}.toml"
    if args.defaults:
        return run_defaults(name, budget, seeds, args, work, stored)
    entry: dict = {"recipe": f"recipes/{name}.toml", "nerforge": [], "standard": []}
    for seed in seeds:
        config = budget_config(
            recipe, budget, shared=args.shared, seed=seed, threads=args.threads, out=work / f"{name}-{seed}"
        )
        entry["nerforge"].append(train_nerforge(name, "nerforge", config, seed))
        splits = read_splits(config)  # the same seeded sample nerforge trained on
        labels = resolve_labels(splits, config.data.labels)
        if not args.skip_standard:
            entry["standard"].append(train_standard(name, config, splits, labels, seed, work))
        entry["data"] = {k: len(v) for k, v in splits.items()}
        entry["budget"] = budget_facts(config, budget, splits, "nerforge_learning_rate")
    return with_summaries(entry)


def run_defaults(
    name: str, budget: Budget, seeds: list[int], args: argparse.Namespace, work: Path, stored: dict | None
) -> dict:
    """The flags-only defaults against the standard recipe; kept under ``defaults`` in the recipe's entry."""
    recipe = REPO / "recipes" / f"{name}.toml"
    out: dict = {"nerforge": [], "standard": [], "command": "", "date": ""}
    for seed in seeds:
        config = defaults_config(
            recipe, budget, shared=args.shared, seed=seed, threads=args.threads, out=work / f"{name}-defaults-{seed}"
        )
        out["nerforge"].append(train_nerforge(name, "defaults", config, seed))
        splits = read_splits(config)
        labels = resolve_labels(splits, config.data.labels)
        reused = _stored_standard(stored, config, len(splits["train"]), seed)
        if reused is not None:
            out["standard"].append({**reused, "reused": True})
            print(f"[{name}] standard seed {seed}: test F1 {reused['test_f1']:.4f} (stored, same budget)", flush=True)
        elif not args.skip_standard:
            out["standard"].append(train_standard(name, config, splits, labels, seed, work))
        out["budget"] = budget_facts(config, budget, splits, "learning_rate")
    with_summaries(out)
    entry = dict(stored or {"recipe": f"recipes/{name}.toml"})
    entry["defaults"] = out
    return entry


def _portable(command: str) -> str:
    """A recorded command without the machine's own paths (``--output``, ``--docs``, ``--plot``, ``--shared``)."""
    return re.sub(r"\s--(output|docs|plot|shared)(\s+(?!--)\S+)+", "", command).strip()


def render_defaults(results: dict) -> str:
    """The flags-only table: what ``nerforge train --train --dev --test`` gives, against the standard recipe."""
    lines = [
        "Flags-only training (`nerforge train --train A --dev B --test C`, every model and training setting at its "
        "default) against the standard recipe with the same sentences, epochs and batch size; the recipe as written "
        "beside it where measured. Test entity F1, strict IOB2, micro, whole test split.",
        "",
        "| recipe | default head | train sentences | epochs | batch | flags-only defaults | standard recipe | Δ "
        "| recipe as written | seeds | minutes (defaults + std) | command | date |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    runs: dict[str, None] = {}
    for name, r in sorted(results["recipes"].items()):
        d = r.get("defaults")
        if not d:
            continue
        b = d["budget"]
        n, s = d["nerforge_f1"], d.get("standard_f1")
        delta = f"{n['mean'] - s['mean']:+.3f}" if s else "–"
        minutes = sum(x["seconds"] for x in d["nerforge"] + [x for x in d["standard"] if not x.get("reused")]) / 60
        reused = " (stored)" if any(x.get("reused") for x in d["standard"]) else ""
        train_cell = f"{b['train_sentences']}" + (" (sample)" if b["sampled"] else "")
        seeds = " ".join(str(x["seed"]) for x in d["nerforge"])
        lines.append(
            f"| `{name}` | {b['head']} | {train_cell} | {b['epochs']:g} | {b['batch_size']} | {_cell(n)} "
            f"| {_cell(s)}{reused} | {delta} | {_cell(r.get('nerforge_f1'))} | {n['n']} | {minutes:.1f} "
            f"| `python bench/accuracy.py --defaults --recipes {name} --seeds {seeds}` | {d['date']} |"
        )
        runs.setdefault(_portable(d["command"]), None)
    lines += [
        "",
        "(stored): the standard recipe's result for exactly these sentences, epochs, batch size and seed, measured by "
        "an earlier run of this bench (`standard` in the recipe's entry) and reused, not trained again.",
        "",
        f"Machine: {results['machine']}. Results: `bench/results/accuracy.json` (`defaults`). Run as: "
        + "; ".join(f"`{c}`" for c in runs)
        + ".",
    ]
    return "\n".join(lines) + "\n"


def head_name(config: TrainConfig) -> str:
    """The nerforge head a recipe trains, as in ``nerforge.json``: ``softmax``, ``crf``, ``shape+crf``..."""
    context = [f"context{config.model.context_sentences}"] if config.model.context_sentences else []
    return "+".join([*config.model.features, "crf" if config.model.crf else "softmax", *context])


def _cell(s: dict | None) -> str:
    if not s:
        return "–"
    return f"{s['mean']:.3f} ± {s['stdev']:.3f}" if s["n"] > 1 else f"{s['mean']:.3f}"


def render(results: dict) -> str:
    lines = [
        "Test entity F1 (strict IOB2, micro; whole test split), embedded MiniLM-L6 encoder for both systems, "
        "same training sentences, epochs and batch size. Mean ± sample stdev over seeds where n > 1.",
        "",
        "| recipe | nerforge head | train sentences | epochs | nerforge | standard recipe | Δ | seeds "
        "| minutes (nerforge + std) | command | date |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, r in sorted(results["recipes"].items()):
        b = r["budget"]
        n, s = r["nerforge_f1"], r.get("standard_f1")
        delta = f"{n['mean'] - s['mean']:+.3f}" if s else "–"
        minutes = sum(x["seconds"] for x in r["nerforge"] + r["standard"]) / 60
        train_cell = f"{b['train_sentences']}" + (" (sample)" if b["sampled"] else "")
        lines.append(
            f"| `{name}` | {b.get('head', 'softmax')} | {train_cell} | {b['epochs']:g} | {_cell(n)} | {_cell(s)} | {delta} | {n['n']} "
            f"| {minutes:.1f} | `{r['command']}` | {r['date']} |"
        )
    lines += ["", f"Machine: {results['machine']}. Results: `bench/results/accuracy.json`."]
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(results["recipes"])
    ours = [results["recipes"][k]["nerforge_f1"] for k in names]
    std = [results["recipes"][k].get("standard_f1") or {"mean": 0.0, "stdev": 0.0} for k in names]
    xs = range(len(names))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(names) + 2), 4.2))
    width = 0.4
    ax.bar(
        [x - width / 2 for x in xs],
        [s["mean"] for s in ours],
        width,
        yerr=[s["stdev"] for s in ours],
        label="nerforge (recipe)",
        color="#2b6cb0",
        capsize=3,
    )
    ax.bar(
        [x + width / 2 for x in xs],
        [s["mean"] for s in std],
        width,
        yerr=[s["stdev"] for s in std],
        label="standard recipe",
        color="#a0aec0",
        capsize=3,
    )
    ax.set_xticks(list(xs), names, rotation=35, ha="right")
    ax.set_ylabel("test entity F1 (strict IOB2)")
    ax.set_ylim(0, 1)
    ax.set_title("Same encoder (MiniLM-L6), same data and budget")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--recipes",
        nargs="+",
        choices=list(BUDGETS),
        metavar="NAME",
        help=f"recipes to run (default: all): {', '.join(BUDGETS)}",
    )
    parser.add_argument("--all", action="store_true", help="run every recipe in BUDGETS")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the first N of 0 1 2, N per recipe)")
    parser.add_argument("--max-train", type=int, help="override every budget's training sample size")
    parser.add_argument("--epochs", type=float, help="override every budget's epochs")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads for both systems (default 1: on a shared 2-core machine more threads spin)",
    )
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="train the flags-only defaults instead of the recipe (kept beside the recipe's result)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="train nothing: rewrite the tables and the plot from the results file",
    )
    parser.add_argument("--skip-standard", action="store_true", help="train nerforge only")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "accuracy.json")
    parser.add_argument(
        "--docs", type=Path, nargs="+", default=[REPO / "docs" / "benchmarks.md", REPO / "docs" / "accuracy.md"]
    )
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "accuracy.png")
    args = parser.parse_args()
    names = list(BUDGETS) if args.all or not args.recipes else args.recipes
    if args.render_only:
        results = json.loads(args.output.read_text())
        for doc in args.docs:
            update_docs(doc, render(results), marker="accuracy")
            update_docs(doc, render_defaults(results), marker="accuracy-defaults")
        plot(results, args.plot)
        return
    if not args.shared.is_dir():
        sys.exit(f"datasets not found at {args.shared}; pass --shared")
    import torch

    torch.set_num_threads(args.threads)
    results = json.loads(args.output.read_text()) if args.output.is_file() else {"recipes": {}}
    results["machine"] = f"{machine()}; torch threads per system: {args.threads}; shared with other jobs"
    command = "python bench/accuracy.py " + " ".join(sys.argv[1:])
    for name in names:
        budget = BUDGETS[name]
        if args.max_train is not None or args.epochs is not None:
            budget = Budget(
                train=args.max_train or budget.train,
                dev=budget.dev,
                epochs=args.epochs or budget.epochs,
                seeds=budget.seeds,
            )
        seeds = args.seeds or [0, 1, 2][: budget.seeds]
        with tempfile.TemporaryDirectory(prefix="nerforge-accuracy-") as tmp:
            entry = run_recipe(name, budget, seeds, args, Path(tmp), results["recipes"].get(name))
        stamp = {"command": command.strip(), "date": time.strftime("%Y-%m-%d")}
        (entry["defaults"] if args.defaults else entry).update(stamp)
        if args.output.is_file():  # another run may have added recipes meanwhile: merge, do not overwrite
            results["recipes"] = json.loads(args.output.read_text())["recipes"]
        if not args.defaults and "defaults" in results["recipes"].get(name, {}):
            entry["defaults"] = results["recipes"][name]["defaults"]
        results["recipes"][name] = entry
        args.output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.output, json.dumps(results, indent=2) + "\n")  # after each recipe: nothing lost
        table = render(results)
        defaults_table = render_defaults(results)
        for doc in args.docs:
            update_docs(doc, table, marker="accuracy")
            update_docs(doc, defaults_table, marker="accuracy-defaults")
        plot(results, args.plot)
    print(render(results))


if __name__ == "__main__":
    main()
