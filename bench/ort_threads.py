"""ONNX Runtime threading: which intra-op thread count and spinning setting give the most words per CPU-second?

    python bench/ort_threads.py --model ONNX_MODEL_DIR --data TEST_FILE

For 1 and 2 intra-op threads (or ``--threads``), with idle threads spinning (ONNX Runtime's default) and sleeping
(``session.intra_op.allow_spinning = 0``, ``SessionSettings(spinning=False)``): the model tags the sentences of
``--data`` at batch 32 and ``--latency-sentences`` of them one at a time (batch 1), best of ``--repeats``; words per
second of wall time and per CPU-second of this process (every thread counted).

Results: ``bench/results/ort-threads.json`` and the table between the ``ort-threads`` markers of
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from train_compare import machine, update_docs  # noqa: E402


def measure(model: Path, sentences: list[list[str]], threads: int, spinning: bool, args: argparse.Namespace) -> dict:
    from nerforge.prediction.onnx_backend import SessionSettings
    from nerforge.prediction.tagger import Tagger

    tagger = Tagger.load(model, batch_size=32, progress=False,
                         onnx_settings=SessionSettings(threads=threads, spinning=spinning))  # fmt: skip
    tagger.predict_words(sentences[:64])  # warm-up
    row: dict = {"threads": threads, "spinning": spinning}
    for batch, part in ((32, sentences), (1, sentences[: args.latency_sentences])):
        tagger.engine.batch_size = batch
        words = sum(map(len, part))
        best = (0.0, 0.0)
        for _ in range(args.repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            if batch == 1:
                for sentence in part:
                    tagger.predict_words([sentence])
            else:
                tagger.predict_words(part)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best = max(best, (words / cpu, words / wall))
        row[f"b{batch}"] = {"words_per_cpu_s": round(best[0]), "words_per_s": round(best[1])}
    return row


def render(results: dict) -> str:
    lines = [f"Command: `{results['command']}`. Machine: {results['machine']}. Model: {results['model']}; "
             f"{results['sentences']} sentences at batch 32, {results['latency_sentences']} one at a time.", "",
             "| intra-op threads | idle threads | words/s b1 | words/CPU-s b1 | words/s b32 | words/CPU-s b32 |",
             "|---:|---|---:|---:|---:|---:|"]
    for r in results["rows"]:
        lines.append(f"| {r['threads']} | {'spin' if r['spinning'] else 'sleep'} | {r['b1']['words_per_s']} | "
                     f"{r['b1']['words_per_cpu_s']} | {r['b32']['words_per_s']} | {r['b32']['words_per_cpu_s']} |")
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
    from nerforge.data.normalize import read_examples
    from nerforge.data.readers.options import ReadOptions

    sentences = [list(ex.tokens) for ex in read_examples(args.data, ReadOptions()) if ex.tokens]
    rows = [measure(args.model, sentences, t, spin, args) for t in args.threads for spin in (True, False)]
    for row in rows:
        print(json.dumps(row), flush=True)
    command = shlex.join(["python", "bench/ort_threads.py", "--model", str(args.model), "--data", str(args.data)])
    results = {"command": command, "machine": machine(), "model": args.model.name, "sentences": len(sentences),
               "latency_sentences": min(args.latency_sentences, len(sentences)), "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    update_docs(args.docs, render(results), marker="ort-threads")
    print(render(results))


if __name__ == "__main__":
    main()
