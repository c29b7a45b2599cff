"""ONNX Runtime's graph rewrites on CPU: every rewrite kept against the measured default (issue 31, item 1).

    python bench/ort_fusions.py --models /tmp/teacher-int8 /tmp/student-int8 --data ../shared/datasets/conll2003/test.txt

For each exported model, ``nerforge bench --threads 1 --batch-sizes 1,32`` with ONNX Runtime's every rewrite
(``--all-fusions``) and with the default (``SessionSettings.unfused``: SkipLayerNormalization left unfused on CPU),
alternating, ``--repeats`` times each, each run a process of its own; the best words per CPU-second of each, their
ratio, and the F1 of both (the rewrite must not move it). Results: ``bench/results/ort-fusions.json`` and the table
between the ``ort-fusions`` markers of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from train_compare import machine, update_docs  # noqa: E402


def bench(model: Path, data: Path, args: argparse.Namespace, all_fusions: bool) -> dict:
    cmd = [sys.executable, "-m", "nerforge", "bench", str(model), str(data), "--threads", "1", "--batch-sizes", "1,32",
           "--latency-sentences", str(args.latency_sentences), "--json"]  # fmt: skip
    if args.sentences:
        cmd += ["--sentences", str(args.sentences)]
    if all_fusions:
        cmd.append("--all-fusions")
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        raise SystemExit(f"failed: {shlex.join(cmd)}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def per_cpu_s(report: dict, batch: int) -> float:
    return next(t["words_per_cpu_s"] for t in report["timings"] if t["batch_size"] == batch)


def render(results: dict) -> str:
    lines = [f"Command: `{results['command']}`. Machine: {results['machine']}. One thread; best of "
             f"{results['repeats']} runs of each, alternating.", "",
             "| model | rewrites left out | F1 | words/CPU-s b1 | words/CPU-s b32 | × all rewrites b1 | × all rewrites b32 |",
             "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, entry in results["models"].items():
        base = entry["all"]
        for key in ("all", "default"):
            r = entry[key]
            lines.append(
                f"| {name} | {', '.join(r['unfused']) or 'none'} | {r['f1']:.4f} | {r['b1']:.0f} | {r['b32']:.0f} "
                f"| {r['b1'] / base['b1']:.2f} | {r['b32'] / base['b32']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", type=Path, required=True, help="exported (ONNX) model directories")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=0, help="time only the first N sentences (0: all)")
    parser.add_argument("--latency-sentences", type=int, default=200)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "ort-fusions.json")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    results: dict = {"command": "python bench/ort_fusions.py " + shlex.join(sys.argv[1:]), "machine": machine(),
                     "repeats": args.repeats, "models": {}}  # fmt: skip
    for model in args.models:
        entry: dict = {}
        for _ in range(args.repeats):
            for key in ("all", "default"):
                report = bench(model, args.data, args, all_fusions=key == "all")
                best = entry.setdefault(key, {"b1": 0.0, "b32": 0.0, "f1": report["f1"], "unfused": report["unfused"]})
                best["b1"] = max(best["b1"], per_cpu_s(report, 1))
                best["b32"] = max(best["b32"], per_cpu_s(report, 32))
                print(f"{model.name} {key}: {per_cpu_s(report, 1):.0f} / {per_cpu_s(report, 32):.0f}", flush=True)
        results["models"][model.name] = entry
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = render(results)
    update_docs(args.docs, table, "ort-fusions")
    print(table)


if __name__ == "__main__":
    main()
