"""ONNX Runtime threading: which intra-op thread count and spinning setting give the most words per CPU-second?

    python bench/ort_threads.py --model ONNX_MODEL_DIR --data TEST_FILE

For 1 and 2 intra-op threads (or ``--threads``), with idle threads spinning (ONNX Runtime's default) and sleeping
(``nerforge bench --no-spinning``): ``measure_speed`` (what ``nerforge bench`` runs) tags the sentences of ``--data``
at batch 32 and ``--latency-sentences`` of them one at a time (batch 1), best of ``--repeats``; words per second of
wall time and per CPU-second of this process (every thread counted).

Results: ``bench/results/ort-threads.json`` and the table between the ``ort-threads`` markers of
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from train_compare import machine, update_docs  # noqa: E402


def measure(model: Path, data: Path, threads: int, spinning: bool, args: argparse.Namespace) -> dict:
    """The best of ``--repeats`` runs of :func:`nerforge.prediction.speed.measure_speed` (``nerforge bench``)."""
    from nerforge.data.readers.options import ReadOptions
    from nerforge.prediction.speed import measure_speed

    row: dict = {"threads": threads, "spinning": spinning}
    for _ in range(args.repeats):
        report = measure_speed(model, data, batch_sizes=(1, 32), latency_sentences=args.latency_sentences,
                               threads=threads, spinning=spinning, options=ReadOptions())  # fmt: skip
        row["sentences"] = max(t.sentences for t in report.timings)
        for t in report.timings:
            key = f"b{t.batch_size}"
            if key not in row or t.words_per_cpu_s > row[key]["words_per_cpu_s"]:
                row[key] = {"words_per_cpu_s": round(t.words_per_cpu_s), "words_per_s": round(t.words_per_s)}
    return row


def render(results: dict) -> str:
    lines = [
        f"Command: `{results['command']}`. Machine: {results['machine']}. Model: {results['model']}; "
        f"{results['sentences']} sentences at batch 32, {results['latency_sentences']} one at a time.",
        "",
        "| intra-op threads | idle threads | words/s b1 | words/CPU-s b1 | words/s b32 | words/CPU-s b32 |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['threads']} | {'spin' if r['spinning'] else 'sleep'} | {r['b1']['words_per_s']} | "
            f"{r['b1']['words_per_cpu_s']} | {r['b32']['words_per_s']} | {r['b32']['words_per_cpu_s']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="an ONNX model directory (nerforge export)")
    parser.add_argument("--data", type=Path, required=True, help="sentences in a format nerforge reads")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--latency-sentences", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "ort-threads.json")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    rows = [measure(args.model, args.data, t, spin, args) for t in args.threads for spin in (True, False)]
    for row in rows:
        print(json.dumps(row), flush=True)
    command = shlex.join(["python", "bench/ort_threads.py", "--model", str(args.model), "--data", str(args.data)])
    results = {
        "command": command,
        "machine": machine(),
        "model": args.model.name,
        "sentences": rows[0]["sentences"],
        "latency_sentences": min(args.latency_sentences, rows[0]["sentences"]),
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    update_docs(args.docs, render(results), marker="ort-threads")
    print(render(results))


if __name__ == "__main__":
    main()
