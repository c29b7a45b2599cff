"""What ``nerforge tune --budget 20m`` buys over the flags-only defaults (issue 30, item 6).

    python bench/tune.py                                        # four kinds of data from ../shared, 20 min each
    python bench/tune.py --datasets conll2003 --budget 5m --threads 1 --output bench/results/tune-conll.json

For each dataset (a recipe's data: its files and reading options, nothing of its model or training settings), a
seeded sample of the training and dev splits and the whole test split go to ``nerforge tune --train --dev --test``
with ``--budget`` and nothing else but the seed (and ``training.num_threads``). The study's first trial is the
flags-only defaults (``nerforge train --train --dev`` with every setting at its default, the same seed), so the
defaults are trained once, inside the same budget; ``tune`` scores the best model and the defaults' model on the test
split once, after the search. Reported: test F1 of both, dev F1 of both, the study's wall time against its budget,
how many trials ran and how many were pruned, and the best trial's settings.

Results: ``--output`` (JSON) and the table between the ``tune`` markers of ``--docs``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from accuracy import SPLITS, _shared_path  # noqa: E402
from train_compare import machine, update_docs  # noqa: E402

from nerforge.config import load_config  # noqa: E402
from nerforge.config.template import config_toml  # noqa: E402
from nerforge.io_utils import atomic_write_text  # noqa: E402

KINDS = {"conll2003": "news", "ncbi_disease": "biomedical", "bc5cdr": "biomedical",
         "skillspan_skill": "job skills", "skillspan_knowledge": "job skills", "green_job_entities": "job skills",
         "tech_terms": "technology terms (long articles)", "finer_ord": "financial news", "wikiann_de": "Wikipedia (de)",
         "conll2002_es": "news (es)", "germeval2014": "news and Wikipedia (de)"}  # fmt: skip
# Training and dev sentences sampled: tech_terms' "sentences" are paragraphs of ~190 words (several windows each).
SAMPLES = {"tech_terms": (200, 60)}


def study_config(recipe: Path, shared: Path, train: int, dev: int, seed: int, threads: int) -> dict:
    """The recipe's data section (files moved under ``shared``, the sample added) and the seed and threads: every
    other setting is left to its default, as a user with only ``--train/--dev/--test`` has it."""
    stated = load_config(recipe)
    data = stated.data.model_dump(mode="json", exclude_none=True)
    data.pop("root", None)
    for name in SPLITS:
        files = stated.data.files(name)
        if files:
            moved = [_shared_path(p, shared) for p in files]
            data[name] = moved if isinstance(getattr(stated.data, name), list) else moved[0]
    data["sample"] = {"train": train, "dev": dev}
    return {"data": data, "training": {"seed": seed, "num_threads": threads}}


def parse(stdout: str) -> dict:
    """The figures ``nerforge tune`` prints at the end."""
    out: dict = {}
    m = re.search(
        r"^(\d+) trials \((\d+) pruned, (\d+) failed\) in ([\d.]+) min of a ([\d.]+) min budget", stdout, re.M
    )
    if m:
        out.update(trials=int(m[1]), pruned=int(m[2]), failed=int(m[3]), study_min=float(m[4]), budget_min=float(m[5]))
    m = re.search(r"^best: trial (\d+), dev F1 ([\d.]+) \((.*)\)$", stdout, re.M)
    if m:
        out.update(best_trial=int(m[1]), best_dev=float(m[2]), best_settings=m[3])
    m = re.search(r"^defaults \(trial 0\): dev F1 ([\d.]+)", stdout, re.M)
    if m:
        out["defaults_dev"] = float(m[1])
    m = re.search(r"^test F1 \(read once, after the search\): (.*)$", stdout, re.M)
    if m:
        for name, value in re.findall(r"(\w+) ([\d.]+)", m[1]):
            out[f"{name}_test"] = float(value)
    return out


def run_one(name: str, args: argparse.Namespace, work: Path) -> dict:
    recipe = REPO / "recipes" / f"{name}.toml"
    train, dev = SAMPLES.get(name, (args.train_sample, args.dev_sample))
    config = work / f"{name}.toml"
    atomic_write_text(config, config_toml(study_config(recipe, args.shared, train, dev, args.seed, args.threads),
                                          f"bench/tune.py: {name}, flags-only data"))  # fmt: skip
    out = work / name
    cmd = [sys.executable, "-m", "nerforge", "tune", str(config), "--budget", args.budget, "-o", str(out),
           "--seed", str(args.seed), "--no-tracking"]  # fmt: skip
    if args.refit_on_dev:
        cmd.append("--refit-on-dev")
    if out.exists():
        cmd.append("--resume")
    print(f"[{name}] {shlex.join(cmd)}", flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (work / f"{name}.log").write_text(f"$ {shlex.join(cmd)}\n{done.stdout}\n{done.stderr}", encoding="utf-8")
    if done.returncode != 0:
        raise SystemExit(f"[{name}] failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures = parse(done.stdout)
    with (out / "leaderboard.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    entry = {"dataset": name, "kind": KINDS.get(name, ""), "train_sentences": train, "dev_sentences": dev,
             "wall_s": round(wall, 1), "leaderboard": rows, **figures}  # fmt: skip
    if args.refit_on_dev:  # the control: what refitting alone buys, without the search
        entry["defaults_refit_test"] = defaults_refit(name, config, out, work)
    print(f"[{name}] {json.dumps({k: v for k, v in entry.items() if k != 'leaderboard'})}", flush=True)
    return entry


def defaults_refit(name: str, config: Path, out: Path, work: Path) -> float | None:
    """The defaults (trial 0) trained on train+dev the way ``--refit-on-dev`` trains the best trial (its best epoch
    count, ``data.dev_in_train``), outside the budget, and scored on the test split: with it the table tells the gain
    of the search from that of the dev sentences."""
    from nerforge.config import TrainConfig
    from nerforge.prediction.evaluate import evaluate
    from nerforge.training import train
    from nerforge.tuning.refit import best_epoch, refit_values

    trial0 = out / "trials" / "0000"
    if not (trial0 / "config.resolved.yaml").is_file():
        return None  # the defaults' trial did not finish
    model = work / f"{name}-defaults-refit"
    resolved = refit_values(trial0, best_epoch(trial0), model)
    print(f"[{name}] the defaults refit on train+dev for {resolved['training']['epochs']} epoch(s)", flush=True)
    train(TrainConfig.model_validate(resolved), progress=False)
    tests = load_config(config).data.files("test")
    return float(evaluate(model, tests, make_plots=False).result.micro.f1)


def _share(entry: dict) -> str:
    """`` (95 %)``: the study's wall time as a share of its budget, where the entry records the budget."""
    budget = entry.get("budget_min")
    return f" ({100 * entry['wall_s'] / (60 * budget):.0f} %)" if budget else ""


def render(results: dict) -> str:
    refit = results.get("refit_on_dev", False)
    tuned = "tuned, refit on train+dev: test F1" if refit else "tuned: test F1"
    lines = [
        f"Command: `{results['command']}`. Machine: {results['machine']}. Each study: `nerforge tune CONFIG --budget "
        f"{results['budget']} --seed {results['seed']} --no-tracking{' --refit-on-dev' if refit else ''}`, CONFIG "
        "holding only the recipe's data (files, reading options, a seeded sample of train and dev) and "
        f"`training.num_threads = {results['threads']}`; trial 0 is the flags-only defaults, trained once inside the "
        "budget (on train only); test F1 read once, after the search.",
        "",
        f"| dataset | kind | train / dev sentences | defaults: dev F1 | best: dev F1 | defaults: test F1 | {tuned} "
        "| Δ test | trials (pruned) | study wall time (of the budget) | best trial's settings |"
        + (" defaults refit on train+dev: test F1 |" if refit else ""),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|" + ("---:|" if refit else ""),
    ]
    for e in results["datasets"]:
        delta = e.get("best_test", 0) - e.get("defaults_test", 0)
        lines.append(
            f"| `{e['dataset']}` | {e['kind']} | {e['train_sentences']} / {e['dev_sentences']} "
            f"| {e.get('defaults_dev', float('nan')):.4f} | {e.get('best_dev', float('nan')):.4f} "
            f"| {e.get('defaults_test', float('nan')):.4f} | {e.get('best_test', float('nan')):.4f} | {delta:+.4f} "
            f"| {e.get('trials', '?')} ({e.get('pruned', '?')}) | {e['wall_s'] / 60:.1f} min{_share(e)} "
            f"| trial {e.get('best_trial', '?')}: {e.get('best_settings', '')} |"
            + (f" {e['defaults_refit_test']:.4f} |" if refit and e.get("defaults_refit_test") is not None else "")
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["conll2003", "ncbi_disease", "skillspan_skill", "tech_terms"])
    parser.add_argument("--budget", default="20m")
    parser.add_argument("--train-sample", type=int, default=1000)
    parser.add_argument("--dev-sample", type=int, default=300)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=2, help="training.num_threads of every trial")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/nerforge-tune-bench"))
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "tune.json")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--refit-on-dev", action="store_true", help="each study's final model trained on train+dev")
    parser.add_argument("--docs-marker", default="tune", help="the table's markers in --docs")
    parser.add_argument("--render-only", nargs="*", type=Path, help="merge these result files and write the docs")
    args = parser.parse_args()
    if args.render_only is not None:
        parts = [json.loads(p.read_text(encoding="utf-8")) for p in args.render_only]
        results = {**parts[0], "datasets": [e for p in parts for e in p["datasets"]]}
        atomic_write_text(args.output, json.dumps(results, indent=2) + "\n")
        update_docs(args.docs, render(results), marker=args.docs_marker)
        return
    if not args.shared.is_dir():
        raise SystemExit(f"{args.shared}: not a folder (the datasets of ../shared)")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    results = {"command": "python bench/tune.py " + shlex.join(sys.argv[1:]), "machine": machine(),
               "budget": args.budget, "seed": args.seed, "threads": args.threads, "refit_on_dev": args.refit_on_dev,
               "date": time.strftime("%Y-%m-%d"), "datasets": []}  # fmt: skip
    for name in args.datasets:
        results["datasets"].append(run_one(name, args, args.work_dir))
        atomic_write_text(args.output, json.dumps(results, indent=2) + "\n")
    update_docs(args.docs, render(results), marker=args.docs_marker)


if __name__ == "__main__":
    main()
