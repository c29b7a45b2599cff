"""Layered against flat models over many seeds (issue 28, item 5): ``bench/layered.py`` once per seed and dataset,
several at a time, and the per-layer test F1 of every seed with the mean and spread.

    python bench/layered_seeds.py --datasets skillspan --epochs 3 --seeds 13 14 15
    python bench/layered_seeds.py --datasets germeval --epochs 10 --seeds 13 14 15 16 --jobs 4 --threads 4
    python bench/layered_seeds.py --combine flat-seeds.json layered-seeds.json flat:both-16-17.json --output all.json

``--combine`` trains nothing: it joins earlier runs' results files per dataset and seed (the flat models of one run,
the layered model of another, run side by side) and tabulates them as one run; ``flat:FILE`` or ``layered:FILE``
takes only those models of a file.

One seed's layered-against-flat difference moves by up to two points on SkillSpan (``docs/benchmarks.md``,
*Layered models*), more than the differences the benchmark is after, so the verdict is read off the mean over seeds,
with each seed's difference beside it. ``--jobs`` runs that many ``bench/layered.py`` processes at once (each with
``--threads`` threads: on a machine with cores and an accelerator to spare; on 2 cores keep ``--jobs 1``). Each
finished run is added to ``--output`` at once, so a run stopped part-way keeps what it finished. Test F1 only (no
int8 export and speed: ``bench/layered.py`` measures those).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from train_compare import machine, update_docs  # noqa: E402


def one_run(dataset: str, seed: int, args: argparse.Namespace, work: Path) -> dict:
    """``bench/layered.py`` for one dataset and seed; its results entry for the dataset (or the failure's tail)."""
    out = work / f"{dataset}-seed{seed}.json"
    cmd = [sys.executable, str(REPO / "bench" / "layered.py"), "--datasets", dataset, "--models", *args.models,
           "--seed", str(seed), "--epochs", str(args.epochs), "--no-speed", "--threads", str(args.threads),
           "--shared", str(args.shared), "--work", str(work / f"{dataset}-seed{seed}"), "--output", str(out),
           "--docs", str(work / f"{dataset}-seed{seed}.md")]  # fmt: skip
    for setting in args.set or ():
        cmd += ["--set", setting]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr[-1500:], "command": shlex.join(cmd)}
    entry = json.loads(out.read_text(encoding="utf-8"))["datasets"][dataset]
    entry["wall_s"] = round(time.perf_counter() - start, 1)
    return entry


def per_layer(entry: dict) -> dict[str, dict[str, float]]:
    """``{layer: {"layered": F1, "flat": F1}}`` of one run."""
    rows: dict[str, dict[str, float]] = {}
    for layer, f1 in entry.get("layered", {}).get("f1", {}).items():
        rows.setdefault(layer, {})["layered"] = f1
    for layer, flat in entry.get("flat", {}).items():
        rows.setdefault(layer, {})["flat"] = flat["f1"]
    return rows


def combine(specs: list[str]) -> dict:
    """One results dict of several ``--output`` files (``[flat:|layered:]FILE``): per dataset and seed, the models of
    every file that ran that seed. Two files with the same model for the same seed, or with different epochs, are
    refused (which one counts would be a guess)."""
    combined: dict = {"command": "", "machine": None, "epochs": None, "datasets": {}}
    commands = []
    for spec in specs:
        kind, _, rest = spec.partition(":")
        models, path = (
            ((kind,), Path(rest)) if kind in ("flat", "layered") and rest else (("layered", "flat"), Path(spec))
        )
        results = json.loads(path.read_text(encoding="utf-8"))
        commands.append(f"`{results['command']}`" + (f" ({models[0]} models)" if len(models) == 1 else ""))
        for key in ("epochs", "machine"):
            if combined[key] is not None and combined[key] != results[key]:
                raise SystemExit(f"{path}: {key} {results[key]!r}, but an earlier file has {combined[key]!r}")
            combined[key] = results[key]
        for dataset, runs in results["datasets"].items():
            for seed, run in runs.items():
                if "error" in run:
                    continue
                into = combined["datasets"].setdefault(dataset, {}).setdefault(seed, {"flat": {}})
                for model in models:
                    part = run.get(model)
                    if not part:
                        continue
                    if model == "layered" and "layered" in into:
                        raise SystemExit(f"{path}: {dataset} seed {seed} has a layered model in an earlier file too")
                    if model == "layered":
                        into["layered"] = part
                        continue
                    for layer, flat in part.items():
                        if layer in into["flat"]:
                            raise SystemExit(
                                f"{path}: {dataset} seed {seed} has a flat {layer} model in an earlier file too"
                            )
                        into["flat"][layer] = flat
    combined["command"] = " + ".join(commands)
    return combined


def mean_and_error(diffs: list[float]) -> str:
    """A list of per-seed differences (F1 points) as its spread and the standard error of its mean."""
    if len(diffs) < 2:
        return ""
    sd = statistics.stdev(diffs)
    return f"sd {100 * sd:.2f}, se {100 * sd / len(diffs) ** 0.5:.2f}"


def lower_bound(diffs: list[float], confidence: float = 0.95) -> float | None:
    """The one-sided ``confidence`` lower bound of the mean per-seed difference (F1 points; a paired t bound over
    seeds): "at least as good as the flat model, less this much" holds at that confidence. ``None`` below 2 seeds."""
    if len(diffs) < 2:
        return None
    from scipy.stats import t  # scipy comes with scikit-learn and mlflow

    error = statistics.stdev(diffs) / len(diffs) ** 0.5
    return 100 * (statistics.mean(diffs) - float(t.ppf(confidence, len(diffs) - 1)) * error)


def render(results: dict) -> str:
    command = results["command"] if results["command"].startswith("`") else f"`{results['command']}`"
    lines = [f"Command: {command}. Machine: {results['machine']}. {results['epochs']} epochs per model, "
             "the default encoder and head; test F1 per layer (strict, that layer's entities).", ""]  # fmt: skip
    for dataset, runs in results["datasets"].items():
        seeds = [(s, r) for s, r in sorted((int(s), r) for s, r in runs.items() if "error" not in r)
                 if all(len(both) == 2 for both in per_layer(r).values())]  # fmt: skip
        layers = list(per_layer(seeds[0][1])) if seeds else []
        if not layers:
            continue
        head = " | ".join(f"layered: {layer} | flat: {layer} | Δ {layer}" for layer in layers)
        lines += [f"**{dataset}**", "", f"| seed | {head} |", "|---:|" + "---:|" * (3 * len(layers))]
        diffs: dict[str, list[float]] = {layer: [] for layer in layers}
        cols: dict[str, dict[str, list[float]]] = {layer: {"layered": [], "flat": []} for layer in layers}
        for seed, run in seeds:
            rows = per_layer(run)
            cells = []
            for layer in layers:
                lay, flat = rows[layer]["layered"], rows[layer]["flat"]
                diffs[layer].append(lay - flat)
                cols[layer]["layered"].append(lay)
                cols[layer]["flat"].append(flat)
                cells.append(f"{lay:.4f} | {flat:.4f} | {100 * (lay - flat):+.2f}")
            lines.append(f"| {seed} | " + " | ".join(cells) + " |")
        mean = " | ".join(
            f"**{statistics.mean(cols[layer]['layered']):.4f}** | **{statistics.mean(cols[layer]['flat']):.4f}** | "
            f"**{100 * statistics.mean(diffs[layer]):+.2f}**"
            for layer in layers
        )
        lines.append(f"| mean of {len(seeds)} | {mean} |")
        spread = " | ".join(f" | | {mean_and_error(diffs[layer])}" for layer in layers)
        lines.append(f"| spread | {spread} |")
        bounds = {layer: lower_bound(diffs[layer]) for layer in layers}
        if all(b is not None for b in bounds.values()):
            cells = " | ".join(f" | | {bounds[layer]:+.2f}" for layer in layers)
            lines.append(f"| 95 % lower bound of Δ | {cells} |")
        lines.append("")
        better = ", ".join(f"{layer} {sum(d >= 0 for d in diffs[layer])} of {len(diffs[layer])}" for layer in layers)
        lines += [f"Seeds where the layered model is at least as good as the flat one: {better}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--datasets", nargs="+", default=["skillspan"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[13, 14, 15])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["layered", "flat"])
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="a config key for every model trained")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--threads", type=int, default=2, help="threads of each run")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "layered-seeds.json")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--docs-marker", default=None,
                        help="the docs table to replace (default layered-seeds; with --combine, none unless given)")  # fmt: skip
    parser.add_argument("--combine", nargs="+", metavar="[flat:|layered:]RESULTS",
                        help="tabulate these results files as one run, training nothing")  # fmt: skip
    args = parser.parse_args()
    if args.combine:
        results = combine(args.combine)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        table = render(results)
        if args.docs_marker:  # a combined table goes into the docs only where asked, not over the seeds' table
            update_docs(args.docs, table, args.docs_marker)
        print(table)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="nerforge-layered-seeds-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"command": "python bench/layered_seeds.py " + shlex.join(sys.argv[1:]), "machine": machine(),
                     "epochs": args.epochs, "datasets": {d: {} for d in args.datasets}}  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(one_run, d, s, args, work): (d, s) for d in args.datasets for s in args.seeds}
        for future in as_completed(futures):
            dataset, seed = futures[future]
            results["datasets"][dataset][str(seed)] = future.result()
            args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
            print(f"{dataset} seed {seed}: {json.dumps(per_layer(results['datasets'][dataset][str(seed)]))}",
                  flush=True)  # fmt: skip
    table = render(results)
    update_docs(args.docs, table, args.docs_marker or "layered-seeds")
    print(table)


if __name__ == "__main__":
    main()
