"""Throughput of ``nerforge predict --engine ray`` with 1 and 2 workers against the single-process engine.

Same input, same model, same chunking for every run. Each run's output is compared byte for byte with the
single-process output. Reported per run: wall time (Ray: from ``ray.init`` to the merged file, so it includes
starting Ray, loading the model in every worker and merging), texts/s, and the speed-up over the single process.

Input: the sentences of CoNLL-2003 test from ``../shared/datasets`` (or ``$NERFORGE_SHARED/datasets``) as one text
per line, or ``--synthetic N`` texts. Model: MODEL, or by default the embedded all-MiniLM-L6-v2 with an untrained
head (the speed of a real model of that size; its entities are meaningless).

Usage::

    python bench/ray_throughput.py                               # CoNLL-2003 test, MiniLM, 1 and 2 workers
    python bench/ray_throughput.py runs/quickstart/model --workers 1 2 4 --limit 1000

Writes ``bench/results/ray_throughput.json`` and prints a Markdown table. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
logger = logging.getLogger("nerforge.bench.ray_throughput")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", default="", help="Model directory (default: MiniLM with an untrained head).")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts to measure.")
    p.add_argument(
        "--single-threads", type=int, nargs="+", default=[1, 2], help="Torch threads of the single-process runs."
    )
    p.add_argument("--limit", type=int, default=0, help="Use the first N texts only (0: all).")
    p.add_argument("--synthetic", type=int, default=0, help="Tag N synthetic texts instead of CoNLL-2003 test.")
    p.add_argument("--chunk-size", type=int, default=1024)
    p.add_argument("--part-size", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--results", default=str(HERE / "results" / "ray_throughput.json"))
    return p.parse_args(argv)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    versions = {}
    for name in ("ray", "torch", "transformers", "pyarrow"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return {
        "cpu": cpu,
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


def conll_texts() -> list[str]:
    shared = Path(os.environ.get("NERFORGE_SHARED", REPO.parent / "shared")) / "datasets"
    path = shared / "conll2003" / "test.txt"
    if not path.is_file():
        raise SystemExit(f"{path} not found; set NERFORGE_SHARED or use --synthetic N")
    texts, words = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if words:
                texts.append(" ".join(words))
                words = []
        elif not line.startswith("-DOCSTART-"):
            words.append(line.split()[0])
    if words:
        texts.append(" ".join(words))
    return texts


def synthetic_texts(n: int) -> list[str]:
    rng = random.Random(0)
    vocab = "the of Acme Corp hired Ann Smith in Paris Berlin on Monday said a new office for research and".split()
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(5, 40))) for _ in range(n)]


def untrained_minilm(directory: Path) -> Path:
    """The embedded MiniLM with a random 9-tag head, saved as a nerforge model directory."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from nerforge.model_dir import ModelMeta, resolve_model
    from nerforge.types import LabelSet

    labels = LabelSet.from_types(["LOC", "MISC", "ORG", "PER"])
    base = resolve_model("default")
    model = AutoModelForTokenClassification.from_pretrained(
        base, num_labels=len(labels.tags), id2label=labels.id2label, label2id=labels.label2id
    )
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(base).save_pretrained(directory)
    ModelMeta(tags=list(labels.tags), max_length=128, stride=16, base_model="all-MiniLM-L6-v2").save(directory)
    return directory


def run_single(model: str, source: Path, output: Path, threads: int, args: argparse.Namespace) -> dict[str, Any]:
    from nerforge.prediction.files import PredictOutput, PredictSource, RunOptions, predict
    from nerforge.threads import set_torch_threads

    set_torch_threads(threads)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    summary = predict(
        model,
        PredictSource(input_path=source),
        PredictOutput(path=output),
        RunOptions(batch_size=args.batch_size, chunk_size=args.chunk_size, progress=False),
    )
    wall = time.perf_counter() - start
    return {
        "engine": "single process",
        "workers": 1,
        "threads_per_worker": threads,
        "wall_s": wall,
        "texts": summary.texts,
        "load_average_before": round(load, 2),
    }


def run_ray(model: str, source: Path, output: Path, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    import ray

    from nerforge.distributed import RayOptions, predict_on_ray

    load = os.getloadavg()[0]
    start = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, object_store_memory=256 << 20, logging_level=logging.WARNING)
    startup = time.perf_counter() - start
    try:
        options = RayOptions(
            num_workers=workers, part_size=args.part_size, chunk_size=args.chunk_size, batch_size=args.batch_size
        )
        summary = predict_on_ray(model, str(source), str(output), options=options)
    finally:
        ray.shutdown()
    wall = time.perf_counter() - start
    return {
        "engine": "ray",
        "workers": workers,
        "threads_per_worker": 1,
        "wall_s": wall,
        "ray_start_s": startup,
        "parts": summary.parts,
        "texts": summary.texts,
        "worker_busy_s": summary.worker_seconds,
        "load_average_before": round(load, 2),
    }


def table(report: dict[str, Any]) -> str:
    m = report["machine"]
    base = report["runs"][0]["texts_per_s"]
    lines = [
        f"Command: `{report['command']}`",
        "",
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPUs, {m['memory_gb']} GB RAM, {m['platform']}; "
        f"load average at start {m['load_average_start'][0]}; ray {m['versions']['ray']}, torch {m['versions']['torch']}",
        "",
        f"Input: {report['input']} ({report['texts']} texts); model: {report['model']}; chunk {report['chunk_size']}, "
        f"part {report['part_size']} texts",
        "",
        "| engine | workers | torch threads each | wall (s) | texts/s | vs first row | tagging texts/s "
        "| same output as first row | load avg before |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in report["runs"]:
        tagging = f"{r['tagging_texts_per_s']:.1f}" if r.get("tagging_texts_per_s") else "–"
        lines.append(
            f"| {r['engine']} | {r['workers']} | {r['threads_per_worker']} | {r['wall_s']:.1f} | {r['texts_per_s']:.1f} "
            f"| {r['texts_per_s'] / base:.2f}x | {tagging} | {'yes' if r['identical'] else 'NO'} "
            f"| {r['load_average_before']} |"
        )
    starts = ", ".join(f"{r['ray_start_s']:.1f} s" for r in report["runs"] if "ray_start_s" in r)
    lines += [
        "",
        f"Wall time is end to end (single process: loading the model and tagging; Ray: also starting Ray ({starts}), "
        "planning, loading the model in each worker and merging the parts). Tagging texts/s counts only the time "
        "the busiest Ray worker spent reading, tagging and writing its parts.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    texts = synthetic_texts(args.synthetic) if args.synthetic else conll_texts()
    if args.limit:
        texts = texts[: args.limit]
    info = machine()
    with tempfile.TemporaryDirectory(prefix="nerforge-ray-bench-") as tmp:
        work = Path(tmp)
        source = work / "texts.txt"
        source.write_text("\n".join(texts) + "\n", encoding="utf-8")
        model = args.model or str(untrained_minilm(work / "model"))
        from nerforge.prediction.tagger import Tagger

        Tagger.load(model, progress=False).predict(texts[:64])  # warm-up: imports and file cache, untimed
        runs = []
        for threads in args.single_threads:
            output = work / f"single-{threads}.jsonl"
            runs.append(run_single(model, source, output, threads, args))
            runs[-1]["identical"] = (
                output.read_bytes() == (work / f"single-{args.single_threads[0]}.jsonl").read_bytes()
            )
        expected = (work / f"single-{args.single_threads[0]}.jsonl").read_bytes()
        for n in args.workers:
            output = work / f"ray-{n}.jsonl"
            runs.append(run_ray(model, source, output, n, args))
            runs[-1]["identical"] = output.read_bytes() == expected
    for r in runs:
        r["texts_per_s"] = r["texts"] / r["wall_s"]
        busy = max(r.get("worker_busy_s", {}).values(), default=0.0)  # the busiest worker: reading, tagging, writing
        r["tagging_texts_per_s"] = r["texts"] / busy if busy else None
    report = {
        "command": ("python bench/ray_throughput.py " + shlex.join(argv if argv is not None else sys.argv[1:])).strip(),
        "machine": info,
        "input": f"{args.synthetic} synthetic texts" if args.synthetic else "CoNLL-2003 test sentences",
        "texts": len(texts),
        "model": args.model or "all-MiniLM-L6-v2 (untrained head)",
        "chunk_size": args.chunk_size,
        "part_size": args.part_size,
        "runs": runs,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(table(report))
    print(f"\nwrote {results}")
    return 0 if all(r["identical"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
