"""One layered model against flat models of one layer each (issue 28, item 5).

    python bench/layered.py                                  # SkillSpan and GermEval 2014 from ../shared
    python bench/layered.py --datasets skillspan --epochs 2 --train-sample 1000

For each dataset, with the flags-only defaults (the default encoder, the shape+CRF head), the same epochs and seed:

* **SkillSpan** (English job postings; a skill and a knowledge tag column): a layered model of both columns against
  two flat models, one per column; test F1 per layer (strict, per layer's entities), training time, and the words/s of
  the int8 ONNX exports (the layered model against the two flat ones run one after the other, which is what tagging
  both layers with flat models costs).
* **GermEval 2014** (German news; outer and inner entities as two tag columns): a layered model of outer+inner and a
  span head (``--head span``: both columns' entities in one layer, nested) against a flat outer-only model; test F1 of
  each level (for the span head, by nesting depth, as GermEval's official outer and inner figures count them). The official training file is missing from ``../shared`` (see its
  SOURCE.md): the models train on the official dev file (a tenth of it carved off as dev) and are scored on the
  official test file. The encoder is the English default, so the German figures are low in absolute terms; the
  comparison is between models trained alike.

Words/s: ``nerforge bench`` on ``--speed-sentences`` test sentences at batch 32 with ``--threads`` threads.
Results: ``bench/results/layered.json`` and the table between the ``layered`` markers of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from train_compare import machine, update_docs  # noqa: E402

NERFORGE = [sys.executable, "-m", "nerforge"]


def run(cmd: list[str], log: Path) -> tuple[float, str]:
    """Run ``cmd``; its wall time and stdout (a failure stops the benchmark with the log's tail)."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log.write_text(f"$ {shlex.join(cmd)}\n{done.stdout}\n{done.stderr}", encoding="utf-8")
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {shlex.join(cmd)}\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def concat(files: list[Path], out: Path) -> Path:
    out.write_text("\n".join(f.read_text(encoding="utf-8").rstrip("\n") + "\n" for f in files), encoding="utf-8")
    return out


def datasets(shared: Path, work: Path) -> dict[str, dict]:
    skill = shared / "skillspan" / "conll"
    germ = shared / "germeval2014"
    return {
        "skillspan": {
            "train": [skill / f"skillspan_{s}_train.conll" for s in ("house", "tech")],
            "dev": [skill / f"skillspan_{s}_dev.conll" for s in ("house", "tech")],
            "test": concat(
                [skill / f"skillspan_{s}_test.conll" for s in ("house", "tech")], work / "skillspan-test.conll"
            ),
            "read": [],
            "layered": ["--tag-columns", "1,2", "--layer-names", "skill,knowledge"],
            "flat": {"skill": ["--tag-column", "1"], "knowledge": ["--tag-column", "2"]},
        },
        "germeval": {
            "train": [germ / "NER-de-dev.tsv"],
            "dev": [],
            "test": germ / "NER-de-test.tsv",
            "read": ["--token-column", "1"],
            "layered": ["--tag-columns", "2,3", "--layer-names", "outer,inner"],
            "flat": {"outer": ["--tag-column", "2"]},
            "span": ["--tag-columns", "2,3", "--head", "span"],
        },
    }


def train(name: str, spec: dict, flags: list[str], out: Path, args: argparse.Namespace, logs: Path) -> float:
    cmd = [*NERFORGE, "train", "--output", str(out), "--epochs", str(args.epochs), "--seed", str(args.seed), "--no-tracking",
           "--no-progress", *spec["read"], *flags]  # fmt: skip
    for f in spec["train"]:
        cmd += ["--train", str(f)]
    for f in spec["dev"]:
        cmd += ["--dev", str(f)]
    sample = f"train={args.train_sample}, " if args.train_sample else ""
    if not spec["dev"]:
        cmd += ["--set", f"data.split={{dev=0.1, by='sentence', seed={args.seed}}}"]
    if sample:
        cmd += ["--set", f"data.sample={{{sample}seed={args.seed}}}"]
    cmd += ["--set", f"training.num_threads={args.threads}"]
    for setting in args.set or ():
        cmd += ["--set", setting]
    seconds, _ = run(cmd, logs / f"{name}-train.log")
    return seconds


def evaluate(model: Path, test: Path, logs: Path, name: str) -> dict:
    _, out = run([*NERFORGE, "evaluate", str(model), str(test), "--json", "--no-plots"], logs / f"{name}-eval.log")
    return json.loads(out)


def speed(model: Path, test: Path, args: argparse.Namespace, logs: Path, name: str) -> float:
    if args.no_speed:
        return 0.0
    int8 = model.with_name(model.name + "-int8")
    run(
        [*NERFORGE, "export", str(model), "--onnx", "--quantize", "int8", "--output", str(int8)],
        logs / f"{name}-export.log",
    )
    _, out = run([*NERFORGE, "bench", str(int8), str(test), "--batch-sizes", "32", "--sentences",
                  str(args.speed_sentences), "--latency-sentences", "1", "--threads", str(args.threads), "--json"],
                 logs / f"{name}-bench.log")  # fmt: skip
    result = json.loads(out)
    row = next(r for r in result["timings"] if r["batch_size"] == 32)
    return float(row["words_per_s"])


def layer_f1(report: dict, layer: str) -> float:
    """A layer's pooled F1 from a layered model's per ``layer/type`` scores."""
    from nerforge.evaluation.metrics import scores_from_counts

    rows = [s for key, s in report["per_type"].items() if key.split("/", 1)[0] == layer]
    pooled = scores_from_counts(sum(r["tp"] for r in rows), sum(r["tp"] + r["fp"] for r in rows),
                                sum(r["support"] for r in rows))  # fmt: skip
    return pooled.f1


def render(results: dict) -> str:
    lines = [f"Command: `{results['command']}`. Machine: {results['machine']}. {results['epochs']} epochs, seed {results.get('seed', 13)}, "
             f"the default encoder and head; words/s: int8 ONNX, batch 32, {results['threads']} threads.", "",
             "| data | model | layer | test F1 | training time | int8 words/s |", "|---|---|---|---:|---:|---:|"]  # fmt: skip
    for name, r in results["datasets"].items():
        for layer, f1 in r.get("layered", {}).get("f1", {}).items():
            lines.append(
                f"| {name} | layered ({', '.join(r['layered']['f1'])}) | {layer} | {f1:.4f} | "
                f"{r['layered']['train_s'] / 60:.1f} min | {r['layered'].get('words_per_s', 0):.0f} |"
            )
        for layer, flat in r["flat"].items():
            lines.append(
                f"| {name} | flat, {layer} only | {layer} | {flat['f1']:.4f} | {flat['train_s'] / 60:.1f} min "
                f"| {flat.get('words_per_s', 0):.0f} |"
            )
        if "span" in r:
            for level, f1 in r["span"]["f1"].items():
                lines.append(
                    f"| {name} | span head (one layer, nested) | {level} | {f1:.4f} | "
                    f"{r['span']['train_s'] / 60:.1f} min | {r['span'].get('words_per_s', 0):.0f} |"
                )
        if len(r["flat"]) > 1:
            speeds = [f["words_per_s"] for f in r["flat"].values()]
            both = 1 / sum(1 / w for w in speeds) if all(speeds) else 0  # 0: --no-speed
            total = sum(f["train_s"] for f in r["flat"].values())
            lines.append(
                f"| {name} | the {len(r['flat'])} flat models together | all | | {total / 60:.1f} min | {both:.0f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--datasets", nargs="+", default=["skillspan", "germeval"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=13, help="the training seed (and the dev split's)")
    parser.add_argument("--train-sample", type=int, default=None)
    parser.add_argument(
        "--models",
        nargs="+",
        default=["layered", "flat", "span"],
        help="which models to train (span: datasets with nested entities only)",
    )
    parser.add_argument("--docs-marker", default="layered", help="the table's markers in --docs")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="a config key for every model trained")
    parser.add_argument("--no-speed", action="store_true", help="test F1 only: no int8 export and words/s")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--speed-sentences", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "layered.json")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="nerforge-layered-"))
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    specs = datasets(args.shared, work)
    results = {"command": "python bench/layered.py " + shlex.join(sys.argv[1:]), "machine": machine(),
               "epochs": args.epochs, "seed": args.seed, "threads": args.threads, "datasets": {}}  # fmt: skip
    for name in args.datasets:
        spec = specs[name]
        test = spec["test"]
        layered = work / f"{name}-layered"
        entry: dict = {"flat": {}}
        if "layered" in args.models:
            entry["layered"] = {"train_s": train(f"{name}-layered", spec, spec["layered"], layered, args, logs)}
            report = evaluate(layered, test, logs, f"{name}-layered")
            names = spec["layered"][spec["layered"].index("--layer-names") + 1].split(",")
            entry["layered"]["f1"] = {layer: layer_f1(report, layer) for layer in names}
            entry["layered"]["micro_f1"] = report["micro"]["f1"]
            entry["layered"]["words_per_s"] = speed(layered, test, args, logs, f"{name}-layered")
        if "span" in args.models and "span" in spec:
            out = work / f"{name}-span"
            entry["span"] = {"train_s": train(f"{name}-span", spec, spec["span"], out, args, logs)}
            report = evaluate(out, test, logs, f"{name}-span")
            entry["span"]["f1"] = {level: s["f1"] for level, s in report["by_depth"].items()}
            entry["span"]["micro_f1"] = report["micro"]["f1"]
            entry["span"]["words_per_s"] = speed(out, test, args, logs, f"{name}-span")
        for layer, flags in spec["flat"].items() if "flat" in args.models else ():
            out = work / f"{name}-{layer}"
            seconds = train(f"{name}-{layer}", spec, flags, out, args, logs)
            flat = evaluate(out, test, logs, f"{name}-{layer}")
            entry["flat"][layer] = {"train_s": seconds, "f1": flat["micro"]["f1"],
                                    "words_per_s": speed(out, test, args, logs, f"{name}-{layer}")}  # fmt: skip
        results["datasets"][name] = entry
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(json.dumps({name: entry}, indent=2), flush=True)
    update_docs(args.docs, render(results), args.docs_marker)
    print(render(results))


if __name__ == "__main__":
    main()
