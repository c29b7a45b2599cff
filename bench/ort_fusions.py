"""ONNX Runtime's graph rewrites on CPU: every rewrite kept against the measured default (issue 31, item 1).

    python bench/ort_fusions.py --models /tmp/teacher-int8 /tmp/student-int8 --data ../shared/datasets/conll2003/test.txt

For each exported model, ``nerforge bench --threads 1 --batch-sizes 1,32`` with ONNX Runtime's every rewrite
(``--all-fusions``) and with the default (``SessionSettings.unfused``: SkipLayerNormalization left unfused on CPU),
alternating, ``--repeats`` times each, each run a process of its own; the best words per CPU-second of each, their
ratio, and the F1 of both (the rewrite must not move it). Results: ``bench/results/ort-fusions.json`` and the table
between the ``ort-fusions`` markers of ``docs/benchmarks.md``. ``--profile`` adds ONNX Runtime's own profile of each
setting (calls and time per operator type), which is where the slow kernel shows.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
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


def op_profile(model: Path, data: Path, unfused: tuple[str, ...] | None) -> dict[str, dict[str, float]]:
    """ONNX Runtime's own profile of ``model`` tagging ``data`` at batch 32 on one thread: per operator type, the
    calls and milliseconds summed over every batch (``SessionOptions.enable_profiling``)."""
    from speed import read_split

    from nerforge.prediction import Tagger
    from nerforge.prediction.onnx_backend import SessionSettings

    sentences, _ = read_split(data, 0)
    folder = tempfile.TemporaryDirectory(prefix="nerforge-ort-profile-")  # removed once the profile is read
    settings = SessionSettings(threads=1, unfused=unfused, profile_prefix=str(Path(folder.name) / "profile"))
    tagger = Tagger.load(model, backend="onnx", progress=False, onnx_settings=settings)
    tagger.engine.batch_size = 32
    tagger.predict_words(sentences)
    with folder:
        events = json.loads(Path(tagger.engine.backend.session.end_profiling()).read_text(encoding="utf-8"))
    ops: dict[str, dict[str, float]] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = ops.setdefault(event["args"]["op_name"], {"calls": 0, "ms": 0.0})
            op["calls"] += 1
            op["ms"] += event["dur"] / 1000
    return ops


def render_profile(results: dict) -> str:
    lines = ["| model | rewrites left out | operator | calls | ms | ms per call | share of graph time |",
             "|---|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, entry in results["models"].items():
        for key in ("all", "default"):
            ops = entry[key].get("ops") or {}
            total = sum(op["ms"] for op in ops.values()) or 1.0
            for op_name, op in sorted(ops.items(), key=lambda kv: -kv[1]["ms"])[:6]:
                lines.append(f"| {name} | {', '.join(entry[key]['unfused']) or 'none'} | {op_name} | {op['calls']} "
                             f"| {op['ms']:.0f} | {op['ms'] / op['calls']:.2f} | {100 * op['ms'] / total:.1f}% |")  # fmt: skip
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--profile", action="store_true", help="also ONNX Runtime's per-operator profile of each")
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
        if args.profile:
            for key in ("all", "default"):
                entry[key]["ops"] = op_profile(model, args.data, () if key == "all" else None)
        results["models"][model.name] = entry
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = render(results)
    if args.profile:
        table += "\nONNX Runtime's profile at batch 32, one thread (the six costliest operator types):\n\n"
        table += render_profile(results)
    update_docs(args.docs, table, "ort-fusions")
    print(table)


if __name__ == "__main__":
    main()
