"""The annotation loop, simulated: does asking the model which sentences to label next beat labelling at random?

    python bench/active_learning.py                                  # conll2003 and ncbi_disease, seeds 0 1 2
    python bench/active_learning.py --datasets conll2003 --seeds 0 --rounds 6

For each dataset (its recipe's train and test files under ``--shared``), seed and strategy: start with ``--start``
labelled sentences drawn at random from a seeded pool of ``--pool`` training sentences, train with the flags-only
defaults for ``--epochs`` epochs but never fewer than ``--min-steps`` optimizer steps (a few epochs of 50 sentences
are too few steps to learn anything, and a fixed step budget would make more labels worthless: a run of 2026-12-02
with 80 steps a round saw random sampling's F1 fall from 0.645 to 0.624 as its labelled set grew; no dev split),
score the test sample (strict IOB2 entity F1), then label ``--step``
more sentences chosen by the strategy and train again from the encoder, for ``--rounds`` rounds:

* ``uncertainty``: ``nerforge suggest``'s ranking (:mod:`nerforge.prediction.suggest`): the model of the round
  tags the unlabelled pool, the least sure first, near-duplicates left out;
* ``random``: a seeded random draw from the unlabelled pool.

Results: ``bench/results/active_learning.json``, the plot ``docs/active_learning.png`` and a table between the
``active_learning`` markers of ``docs/benchmarks.md``, with the labelled-sentence saving at random's final F1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from train_compare import machine, update_docs  # noqa: E402

from nerforge.config import load_config  # noqa: E402
from nerforge.data.splits import read_data_splits  # noqa: E402
from nerforge.data.writers import write_examples  # noqa: E402
from nerforge.io_utils import atomic_write_text  # noqa: E402
from nerforge.prediction.suggest import Candidate, rank, uncertainty  # noqa: E402
from nerforge.training.run import train  # noqa: E402
from nerforge.types import Example  # noqa: E402

DATASETS = ("conll2003", "ncbi_disease")
STRATEGIES = ("uncertainty", "random")


def _shared(path: Path, shared: Path) -> Path:
    parts = path.parts
    return shared.joinpath(*parts[parts.index("datasets") + 1 :]) if "datasets" in parts else path


def load_dataset(
    name: str, shared: Path, pool_size: int, test_size: int, seed: int = 13
) -> tuple[list[Example], list[Example]]:
    """A seeded pool of training sentences (with entities or not) and a seeded test sample, as IOB2 examples."""
    stated = load_config(REPO / "recipes" / f"{name}.toml", data_dir=shared)
    data = stated.data.model_copy()
    splits = read_data_splits(data)
    rng = random.Random(seed)
    train_ex = [ex for ex in splits["train"] if ex.tokens]
    test_ex = [ex for ex in splits["test"] if ex.tokens]
    rng.shuffle(train_ex)
    rng.shuffle(test_ex)
    strip = [Example(ex.tokens, ex.tags) for ex in train_ex[:pool_size]]  # no documents: sentences stand alone
    return strip, [Example(ex.tokens, ex.tags) for ex in test_ex[:test_size]]


def train_round(
    labelled: list[Example],
    test: list[Example],
    work: Path,
    *,
    epochs: float,
    min_steps: int,
    seed: int,
    threads: int,
    labels: list[str],
) -> tuple[float, Path]:
    """Train the flags-only defaults on ``labelled``, return the test F1 and the model directory."""
    work.mkdir(parents=True, exist_ok=True)
    write_examples(labelled, work / "train.conll", "conll")
    write_examples(test, work / "test.conll", "conll")
    config = load_config(None, flags={
        "data.train": str(work / "train.conll"), "data.test": str(work / "test.conll"), "data.labels": labels,
        "output.dir": str(work / "model"), "training.seed": seed,
        "training.max_steps": max(min_steps, math.ceil(epochs * len(labelled) / 16)),
        "training.num_threads": threads, "tracking.enabled": False,
    })  # fmt: skip
    result = train(config, progress=False)
    assert result.test is not None
    return result.test.micro.f1, work / "model"


def choose(strategy: str, model: Path, pool: list[Example], count: int, seed: int) -> list[int]:
    """Indices into ``pool`` of the next ``count`` sentences to label."""
    if strategy == "random":
        return random.Random(seed).sample(range(len(pool)), min(count, len(pool)))
    from nerforge.prediction import Tagger

    tagger = Tagger.load(model, progress=False)
    predictions = tagger.predict_words([list(ex.tokens) for ex in pool])
    candidates = [Candidate(i, " ".join(ex.tokens), uncertainty(p.scores)) for i, (ex, p) in
                  enumerate(zip(pool, predictions, strict=True))]  # fmt: skip
    return [c.index for c in rank(candidates, count, "uncertainty")]


def run(
    name: str,
    strategy: str,
    seed: int,
    args: argparse.Namespace,
    pool: list[Example],
    test: list[Example],
    labels: list[str],
    work: Path,
) -> list[dict]:
    rng = random.Random(seed)
    order = list(range(len(pool)))
    rng.shuffle(order)
    labelled = [pool[i] for i in order[: args.start]]
    unlabelled = [pool[i] for i in order[args.start :]]
    points = []
    for round_ in range(args.rounds + 1):
        start = time.perf_counter()
        f1, model = train_round(labelled, test, work / f"{name}-{strategy}-{seed}-{round_}", epochs=args.epochs,
                                min_steps=args.min_steps,
                                seed=seed, threads=args.threads, labels=labels)  # fmt: skip
        points.append({"round": round_, "labelled": len(labelled), "test_f1": f1,
                       "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
        print(f"[{name}] {strategy} seed {seed} round {round_}: {len(labelled)} labelled, test F1 {f1:.4f}", flush=True)
        if round_ == args.rounds:
            break
        picked = set(choose(strategy, model, unlabelled, args.step, seed * 1000 + round_))
        labelled += [ex for i, ex in enumerate(unlabelled) if i in picked]
        unlabelled = [ex for i, ex in enumerate(unlabelled) if i not in picked]
    return points


def saving(curves: dict[str, list[dict]]) -> dict[str, float | None]:
    """Labelled sentences each strategy needs to reach random's final mean F1 (linear interpolation), and the
    saving of uncertainty over random (1 - ratio)."""

    def mean_curve(points: list[dict]) -> list[tuple[int, float]]:
        by: dict[int, list[float]] = {}
        for p in points:
            by.setdefault(p["labelled"], []).append(p["test_f1"])
        return sorted((n, statistics.fmean(v)) for n, v in by.items())

    target = mean_curve(curves["random"])[-1][1]
    needed: dict[str, float | None] = {}
    for strategy, points in curves.items():
        curve = mean_curve(points)
        needed[strategy] = None
        for (n0, f0), (n1, f1) in zip(curve, curve[1:], strict=False):
            if f0 >= target:
                needed[strategy] = float(n0)
                break
            if f1 >= target:
                needed[strategy] = n0 + (target - f0) / (f1 - f0) * (n1 - n0)
                break
        if needed[strategy] is None and curve and curve[0][1] >= target:
            needed[strategy] = float(curve[0][0])
    u, r = needed.get("uncertainty"), needed.get("random")
    return {"random_final_f1": target, "uncertainty_needs": u, "random_needs": r,
            "saving": (1 - u / r) if u is not None and r else None}  # fmt: skip


def render(results: dict) -> str:
    lines = [
        "Active learning, simulated (`bench/active_learning.py`): labelled sentences vs test entity F1 (strict IOB2), "
        "mean over seeds; flags-only defaults, 10 epochs a round (at least 80 optimizer steps), the embedded MiniLM "
        "encoder.",
        "",
        "| dataset | strategy | "
        + " | ".join(f"{n}" for n in results["sizes"])
        + " | labelled to reach random's final F1 | saving |",
        "|---|---|" + "---:|" * len(results["sizes"]) + "---:|---:|",
    ]
    for name, d in sorted(results["datasets"].items()):
        s = d["saving"]
        for strategy in STRATEGIES:
            pts = d["curves"][strategy]
            cells = []
            for n in results["sizes"]:
                vals = [p["test_f1"] for p in pts if p["labelled"] == n]
                cells.append(f"{statistics.fmean(vals):.3f}" if vals else "–")
            need = s.get(f"{strategy}_needs")
            need_cell = f"{need:.0f}" if need is not None else "not reached"
            saving_cell = f"{s['saving']:.0%}" if strategy == "uncertainty" and s["saving"] is not None else ""
            lines.append(f"| `{name}` | {strategy} | " + " | ".join(cells) + f" | {need_cell} | {saving_cell} |")
    lines += [
        "",
        f"Machine: {results['machine']}. Command: `{results['command']}` ({results['date']}). "
        "Results: `bench/results/active_learning.json`; plot: `docs/active_learning.png`.",
    ]
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(results["datasets"])
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for strategy, color in zip(STRATEGIES, ("#2b6cb0", "#a0aec0"), strict=True):
            pts = results["datasets"][name]["curves"][strategy]
            sizes = sorted({p["labelled"] for p in pts})
            means = [statistics.fmean([p["test_f1"] for p in pts if p["labelled"] == n]) for n in sizes]
            sds = [statistics.pstdev([p["test_f1"] for p in pts if p["labelled"] == n]) for n in sizes]
            ax.plot(sizes, means, "o-", color=color, label=strategy)
            ax.fill_between(sizes, [m - s for m, s in zip(means, sds, strict=True)],
                            [m + s for m, s in zip(means, sds, strict=True)], color=color, alpha=0.2)  # fmt: skip
        ax.set_title(name)
        ax.set_xlabel("labelled sentences")
        ax.set_ylabel("test entity F1 (strict IOB2)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--start", type=int, default=50)
    parser.add_argument("--step", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--pool", type=int, default=600, help="training sentences the loop draws from")
    parser.add_argument("--test", type=int, default=200, help="test sentences scored each round")
    parser.add_argument("--epochs", type=float, default=10.0, help="epochs per round (batch 16)")
    parser.add_argument("--min-steps", type=int, default=80, help="optimizer steps per round at least")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "active_learning.json")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "active_learning.png")
    parser.add_argument(
        "--render-only",
        nargs="*",
        type=Path,
        metavar="RESULTS",
        help="train nothing: merge these results files (default: --output) and rewrite docs and plot",
    )
    args = parser.parse_args()
    if args.render_only is not None:
        merged: dict = {}
        for path in args.render_only or [args.output]:
            part = json.loads(path.read_text())
            datasets = {**merged.get("datasets", {}), **part["datasets"]}
            merged = {**part, "datasets": datasets}
        atomic_write_text(args.output, json.dumps(merged, indent=2) + "\n")
        update_docs(args.docs, render(merged), marker="active_learning")
        plot(merged, args.plot)
        print(render(merged))
        return
    if not args.shared.is_dir():
        sys.exit(f"datasets not found at {args.shared}; pass --shared")
    import torch

    torch.set_num_threads(args.threads)
    results = json.loads(args.output.read_text()) if args.output.is_file() else {"datasets": {}}
    results.update(machine=f"{machine()}; torch threads {args.threads}", date=time.strftime("%Y-%m-%d"),
                   command=re.sub(r"\s--(output|docs|plot|shared)\s+\S+", "", " ".join(["python bench/active_learning.py",
                                                                                          *sys.argv[1:]])),
                   sizes=[args.start + k * args.step for k in range(args.rounds + 1)])  # fmt: skip
    for name in args.datasets:
        pool, test = load_dataset(name, args.shared, args.pool, args.test)
        labels = sorted({t[2:] for ex in pool + test for t in ex.tags if t != "O"})
        curves: dict[str, list[dict]] = {s: [] for s in STRATEGIES}
        with tempfile.TemporaryDirectory(prefix="nerforge-al-") as tmp:
            for seed in args.seeds:
                for strategy in STRATEGIES:
                    for point in run(name, strategy, seed, args, pool, test, labels, Path(tmp)):
                        curves[strategy].append({**point, "seed": seed})
                # after each seed: a run cut short keeps the seeds it finished
                if args.output.is_file():  # another run (another dataset) may have written meanwhile
                    results["datasets"] = json.loads(args.output.read_text()).get("datasets", {})
                results["datasets"][name] = {"pool": len(pool), "test": len(test), "curves": curves,
                                             "seeds": args.seeds[: args.seeds.index(seed) + 1],
                                             "saving": saving(curves)}  # fmt: skip
                args.output.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(args.output, json.dumps(results, indent=2) + "\n")
                update_docs(args.docs, render(results), marker="active_learning")
                plot(results, args.plot)
    print(render(results))


if __name__ == "__main__":
    main()
