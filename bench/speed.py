"""CPU inference (and training) speed of nerforge against the usual alternatives, on one model and one test set.

Engines (each measured in a fresh process, see ``bench/speed_engines.py``): the Hugging Face token-classification
pipeline, nerforge with its torch backend, nerforge on ONNX Runtime fp32 and int8 (exported here with
``nerforge.export``), and spaCy ``en_core_web_sm`` when installed. For each: words/s and sentences/s at batch 1 and
32, p50/p95 latency of one sentence, peak RSS delta, strict IOB2 test F1. Training speed (``bench/speed_train.py``):
nerforge's samples/s against a plain ``Trainer`` recipe. Results go to ``--results`` as ``speed.json`` and
``speed.md``.

Quick run (about 2-5 minutes on 2 cores; ``--model random`` puts a random head on the default encoder, which
measures speed but not F1)::

    .venv/bin/python bench/speed.py --model random --sentences 300 --latency-sentences 60 --train-steps 8

Real run: ``--model runs/conll/model`` (all-MiniLM-L6-v2 fine-tuned on CoNLL-2003) or ``--model train``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ENGINES = ("hf-pipeline", "nerforge-torch", "nerforge-onnx-fp32", "nerforge-onnx-int8", "spacy-sm")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--data",
        default=str(HERE.parent.parent / "shared" / "datasets" / "conll2003"),
        help="CoNLL-2003 folder (test.txt, train.txt) (default: ../shared/datasets/conll2003).",
    )
    p.add_argument(
        "--model",
        default="train",
        help="A nerforge model directory; 'random' (default encoder + random head: speed only, F1 "
        "meaningless); or 'train' (train one now with nerforge train; see --train-sentences).",
    )
    p.add_argument("--sentences", type=int, default=0, help="Test sentences to use (0: all).")
    p.add_argument("--latency-sentences", type=int, default=200, help="Sentences timed one by one at batch 1.")
    p.add_argument("--batch-size", type=int, default=32, help="The large batch size (batch 1 is always measured).")
    p.add_argument("--engines", default=",".join(ENGINES), help=f"Comma-separated subset of: {', '.join(ENGINES)}.")
    p.add_argument("--threads", type=int, default=0, help="Threads per engine (0: physical cores).")
    p.add_argument("--exporter", default="torchscript", help="ONNX exporter: torchscript (default) or dynamo.")
    p.add_argument("--train-sentences", type=int, default=3000, help="Train sentences for --model train.")
    p.add_argument("--train-epochs", type=float, default=2.0, help="Epochs for --model train.")
    p.add_argument("--train-steps", type=int, default=30, help="Optimizer steps per training-speed recipe (0: skip).")
    p.add_argument("--train-batch-size", type=int, default=16)
    p.add_argument("--results", default=str(HERE / "results"), help="Folder for speed.json and speed.md.")
    p.add_argument("--work-dir", default="", help="Keep models/exports here (default: a temporary folder).")
    return p.parse_args(argv)


def machine() -> dict[str, Any]:
    """CPU model and core counts from /proc/cpuinfo, load average, library versions."""
    model, cores, logical = "unknown", set(), 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name":
                model, logical = value, logical + 1
            elif key == "physical id":
                phys = value
            elif key == "core id":
                cores.add((phys, value))
    except OSError:
        pass
    versions = {}
    for name in ("torch", "transformers", "onnxruntime", "onnx", "spacy", "numpy"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return {
        "cpu": model,
        "physical_cores": len(cores) or os.cpu_count(),
        "logical_cpus": logical or os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_start": os.getloadavg(),
        "versions": versions,
    }


def write_conll(path: Path, words: list[list[str]], tags: list[list[str]]) -> None:
    lines = []
    for ws, ts in zip(words, tags, strict=True):
        lines += [f"{w} {t}" for w, t in zip(ws, ts, strict=True)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")


def read_split(path: Path, limit: int) -> tuple[list[list[str]], list[list[str]]]:
    from nerforge.data.readers.registry import read_corpus
    from nerforge.data.schemes import convert_tags

    examples = [ex for ex in read_corpus(path).examples if ex.tokens]
    examples = examples[:limit] if limit > 0 else examples
    return [list(ex.tokens) for ex in examples], [convert_tags(ex.tags, "iob2") for ex in examples]


def prepare_model(args: argparse.Namespace, work: Path) -> tuple[Path, list[str]]:
    """The torch model directory to measure, and notes about it."""
    if args.model not in ("random", "train"):
        return Path(args.model), []
    out = work / f"model-{args.model}"
    if (out / "nerforge.json").is_file():
        return out, [f"reused {out}"]
    if args.model == "random":
        import torch
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        from nerforge.model_dir import ModelMeta, resolve_model
        from nerforge.types import LabelSet

        labels = LabelSet.from_types(["LOC", "MISC", "ORG", "PER"])
        base = resolve_model("default")
        torch.manual_seed(0)
        model = AutoModelForTokenClassification.from_pretrained(
            base, num_labels=len(labels.tags), id2label=labels.id2label, label2id=labels.label2id
        )
        model.save_pretrained(out)
        AutoTokenizer.from_pretrained(base).save_pretrained(out)
        ModelMeta(tags=list(labels.tags), max_length=256, stride=32, base_model=base).save(out)
        return out, ["random classification head on the default encoder: speed is meaningful, F1 is not"]
    words, tags = read_split(Path(args.data) / "train.txt", args.train_sentences)
    train_file = work / "train-subset.conll"
    write_conll(train_file, words, tags)
    dev_words, dev_tags = read_split(Path(args.data) / "valid.txt", max(100, args.train_sentences // 5))
    dev_file = work / "dev-subset.conll"
    write_conll(dev_file, dev_words, dev_tags)
    entry = "from nerforge.cli import _entry; _entry()"
    run([sys.executable, "-c", entry, "train", "--train", str(train_file), "--dev", str(dev_file), "--output", str(out),
         "--epochs", str(args.train_epochs), "--no-tracking"])  # fmt: skip
    note = f"trained here: nerforge train on {len(words)} train / {len(dev_words)} dev sentences, {args.train_epochs} epochs"
    return out, [note]


def run(cmd: list[str]) -> None:
    print("$", shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})


def engine_process(
    engine: str,
    model: Path | None,
    data: Path,
    out: Path,
    *,
    threads: int,
    batch_sizes: str,
    latency_sentences: int,
    pin_threads: bool = False,
) -> dict[str, Any]:
    """``engine`` measured by ``speed_engines.py`` in a process of its own (``data``: the sentences as JSON); its
    result (``out``). ``pin_threads`` also caps OpenMP/MKL/OpenBLAS at ``threads`` (for per-CPU-second figures, where
    a library's own pool must not use more cores than the run says)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(sys.path)}  # fmt: skip
    if pin_threads:
        env |= {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    cmd = [sys.executable, str(HERE / "speed_engines.py"), engine, "--model", str(model or "none"), "--data",
           str(data), "--out", str(out), "--threads", str(threads), "--batch-sizes", batch_sizes,
           "--latency-sentences", str(latency_sentences)]  # fmt: skip
    print("$", shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env)
    return json.loads(out.read_text(encoding="utf-8"))


def export_models(model: Path, work: Path, exporter: str) -> dict[str, dict[str, Any]]:
    from nerforge.export import ExportOptions, export_onnx

    out = {}
    for name, quantize in (("fp32", None), ("int8", "int8")):
        target = work / f"onnx-{name}"
        result = export_onnx(model, target, ExportOptions(quantize=quantize, exporter=exporter))
        out[name] = {
            "dir": str(target),
            "seconds": result.seconds,
            "onnx_mb": round(result.onnx_bytes / 1e6, 1),
            "tag_agreement": result.parity.tag_agreement,
            "max_abs_logit_diff": result.parity.max_abs_logit_diff,
        }
        print(f"exported {name}: {out[name]}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(HERE))
    from speed_report import check_targets, render_markdown

    from nerforge.prediction.onnx_backend import physical_cores

    started = time.time()
    threads = args.threads or physical_cores()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        raise SystemExit(f"unknown engines: {sorted(unknown)}; choose from {', '.join(ENGINES)}")
    info = machine()
    with tempfile.TemporaryDirectory(prefix="nerforge-bench-") as tmp:
        work = Path(args.work_dir) if args.work_dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        words, tags = read_split(Path(args.data) / "test.txt", args.sentences)
        data_file = work / "test.json"
        data_file.write_text(json.dumps({"words": words, "tags": tags}), encoding="utf-8")
        model, notes = prepare_model(args, work)
        exports = export_models(model, work, args.exporter) if any("onnx" in e for e in engines) else {}
        model_for = {
            "nerforge-onnx-fp32": exports.get("fp32", {}).get("dir"),
            "nerforge-onnx-int8": exports.get("int8", {}).get("dir"),
        }
        results = []
        for engine in engines:
            results.append(
                engine_process(
                    engine,
                    model_for.get(engine) or model,
                    data_file,
                    work / f"result-{engine}.json",
                    threads=threads,
                    batch_sizes=f"1,{args.batch_size}",
                    latency_sentences=args.latency_sentences,
                )
            )
        training = []
        if args.train_steps > 0:
            train_words, train_tags = read_split(
                Path(args.data) / "train.txt", args.train_steps * args.train_batch_size
            )
            train_file = work / "train-speed.conll"
            write_conll(train_file, train_words, train_tags)
            for recipe in ("plain-trainer", "nerforge"):
                out = work / f"train-{recipe}.json"
                run(
                    [
                        sys.executable,
                        str(HERE / "speed_train.py"),
                        recipe,
                        "--train",
                        str(train_file),
                        "--out",
                        str(out),
                        "--steps",
                        str(args.train_steps),
                        "--batch-size",
                        str(args.train_batch_size),
                        "--threads",
                        str(threads),
                    ]
                )
                training.append(json.loads(out.read_text(encoding="utf-8")))
    info["load_average_end"] = os.getloadavg()
    report = {
        "command": shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(["bench/speed.py", *argv]),
        "machine": info,
        "threads": threads,
        "model": str(model) if args.model not in ("random", "train") else args.model,
        "model_notes": notes,
        "test_data": str(Path(args.data) / "test.txt"),
        "sentences": len(words),
        "words": sum(len(w) for w in words),
        "exports": exports,
        "engines": results,
        "training": training,
        "seconds": round(time.time() - started, 1),
    }
    report["targets"] = check_targets(report, args.batch_size)
    results_dir = Path(args.results)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "speed.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    markdown = render_markdown(report, args.batch_size)
    (results_dir / "speed.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
