"""Words per CPU-second of our int8 engines against spaCy ``en_core_web_sm``, in one run (issue 31, item 4).

    python bench/cpu_ratio.py --model TEACHER_DIR --student STUDENT_DIR
    python bench/cpu_ratio.py --model TEACHER_DIR --student STUDENT_DIR --static --calibration TRAIN_FILE

Each model directory (PyTorch weights) is exported with ``nerforge export --onnx --quantize int8`` (and, with
``--static``, quantized statically as ``bench/static_int8.py`` does: activation ranges calibrated on training
sentences). Every engine then runs in a process of its own (``bench/speed_engines.py``: the same timing as ``nerforge
bench``) with ``--threads`` 1 and 2, at batch 1 and 32, on the same test sentences; spaCy gets the same thread limit
(``OMP_NUM_THREADS``; its NER runs on one thread). The PyTorch models are run once more for their F1, to give each
int8 graph's F1 loss against torch. Words per CPU-second count every thread of the engine's process.

Results: ``--output`` and the table between the ``cpu-ratio`` markers of ``--docs``.
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
HERE = REPO / "bench"
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from speed import engine_process, read_split  # noqa: E402
from train_compare import machine, update_docs  # noqa: E402

NERFORGE = [sys.executable, "-m", "nerforge"]


def engine_run(engine: str, model: Path | None, data: Path, threads: int, batch_sizes: str, args: argparse.Namespace,
               work: Path, tag: str) -> dict:  # fmt: skip
    result = engine_process(engine, model, data, work / f"{tag}-t{threads}.json", threads=threads,
                            batch_sizes=batch_sizes, latency_sentences=args.latency_sentences, pin_threads=True)  # fmt: skip
    if "skipped" in result:
        raise SystemExit(f"{engine} could not run: {result['skipped']}")
    return result


def row(name: str, kind: str, threads: int, result: dict) -> dict:
    batches = {b["batch_size"]: b for b in result["batches"]}
    return {"name": name, "kind": kind, "threads": threads, "f1": result.get("f1"), "f1_core": result.get("f1_core"),
            **{f"{key}_b{b}": batches[b][key] for b in (1, 32) if b in batches
               for key in ("words_per_s", "words_per_cpu_s")}}  # fmt: skip


def render(results: dict) -> str:
    rows = results["rows"]
    lines = [f"Command: `{results['command']}`. Machine: {results['machine']}. Data: {results['data']} "
             f"({results['sentences']} sentences, {results['words']} words); batch 1 times {results['latency']} "
             "sentences one at a time.", "",
             "| engine | threads | F1 (all types) | F1 PER/LOC/ORG | F1 torch | words/s b1 | words/CPU-s b1 | "
             "words/s b32 | words/CPU-s b32 | × spaCy per CPU-s b1 | × spaCy per CPU-s b32 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    spacy = {r["threads"]: r for r in rows if r["kind"] == "spacy"}
    for r in rows:
        s = spacy.get(r["threads"], {})
        ratio = {b: (r[f"words_per_cpu_s_b{b}"] / s[f"words_per_cpu_s_b{b}"]) if s else float("nan") for b in (1, 32)}
        torch_f1 = results["torch_f1"].get(r.get("model", ""), None)
        lines.append(
            f"| {r['name']} | {r['threads']} | {r['f1']:.4f} | {r['f1_core']:.4f} | "
            f"{'' if torch_f1 is None else f'{torch_f1:.4f}'} | {r['words_per_s_b1']:.0f} | "
            f"{r['words_per_cpu_s_b1']:.0f} | {r['words_per_s_b32']:.0f} | {r['words_per_cpu_s_b32']:.0f} | "
            f"{ratio[1]:.2f} | {ratio[32]:.2f} |"
        )
    lines += ["", *results["verdicts"]]
    return "\n".join(lines) + "\n"


def verdicts(results: dict) -> list[str]:
    rows, out = results["rows"], []
    spacy1 = next(r for r in rows if r["kind"] == "spacy" and r["threads"] == 1)

    def find(name: str, threads: int) -> dict | None:
        return next((r for r in rows if r["name"] == name and r["threads"] == threads), None)

    for name, target in (("default int8", 0.6), ("student int8", 1.0)):
        for graph in (name, name.replace("int8", "static int8")):
            one, two = find(graph, 1), find(graph, 2)
            if one is None:
                continue
            ratio = one["words_per_cpu_s_b32"] / spacy1["words_per_cpu_s_b32"]
            out.append(f"- {graph}, one thread, batch 32: {ratio:.2f}x spaCy sm's words per CPU-second (target at least "
                       f"{target}x) — {'met' if ratio >= target else 'not met'}")  # fmt: skip
            if two is not None:
                loss = 1 - two["words_per_cpu_s_b32"] / one["words_per_cpu_s_b32"]
                out.append(f"- {graph}: two threads lose {loss:.1%} of the words per CPU-second of one at batch 32 "
                           f"(target under 15%) — {'met' if loss < 0.15 else 'not met'}")  # fmt: skip
            torch_f1 = results["torch_f1"].get(one.get("model", ""))
            if torch_f1 is not None:
                drop = (torch_f1 - one["f1"]) * 100
                out.append(f"- {graph}: F1 {drop:.2f} points below torch's (target under 0.5) — "
                           f"{'met' if drop < 0.5 else 'not met'}")  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="the default model (PyTorch weights)")
    parser.add_argument("--student", type=Path, help="a 3-layer student of it (nerforge distill)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "conll2003" / "test.txt")
    parser.add_argument("--static", action="store_true", help="also static int8 graphs (needs --calibration)")
    parser.add_argument("--calibration", type=Path, help="training sentences for the static graphs' ranges")
    parser.add_argument("--calibration-sentences", type=int, default=256)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--latency-sentences", type=int, default=200)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "cpu-ratio.json")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    if args.static and args.calibration is None:
        parser.error("--static needs --calibration")
    words, tags = read_split(args.data, 0)
    with tempfile.TemporaryDirectory(prefix="nerforge-cpu-ratio-") as tmp:
        work = Path(tmp)
        data = work / "data.json"
        data.write_text(json.dumps({"words": words, "tags": tags}), encoding="utf-8")
        graphs: list[tuple[str, Path, Path]] = []  # (name, graph directory, the torch model it came from)
        for label, model in (("default", args.model), ("student", args.student)):
            if model is None:
                continue
            int8 = work / f"{label}-int8"
            subprocess.run([*NERFORGE, "export", str(model), "--onnx", "--quantize", "int8", "-o", str(int8)],
                           check=True, capture_output=True)  # fmt: skip
            graphs.append((f"{label} int8", int8, model))
            if args.static:
                from static_int8 import quantize, record_feeds

                fp32 = work / f"{label}-fp32"
                subprocess.run([*NERFORGE, "export", str(model), "--onnx", "-o", str(fp32)], check=True,
                               capture_output=True)  # fmt: skip
                feeds = record_feeds(fp32, args.calibration, args.calibration_sentences)
                graphs.append((f"{label} static int8", quantize(fp32, feeds, work / f"{label}-static", "qdq"), model))
        rows = []
        for threads in args.threads:
            spacy = engine_run("spacy-sm", None, data, threads, "1,32", args, work, "spacy")
            rows.append({**row("spaCy en_core_web_sm", "spacy", threads, spacy), "model": ""})
            for name, graph, model in graphs:
                result = engine_run("nerforge-onnx-int8", graph, data, threads, "1,32", args, work, graph.name)
                rows.append({**row(name, "nerforge", threads, result), "model": str(model)})
        torch_f1 = {}
        for _, _, model in graphs:
            if str(model) not in torch_f1:
                result = engine_run("nerforge-torch", model, data, 2, "32", args, work, f"torch-{model.name}")
                torch_f1[str(model)] = result.get("f1")
    results = {"command": "python bench/cpu_ratio.py " + shlex.join(sys.argv[1:]), "machine": machine(),
               "data": str(args.data), "sentences": len(words), "words": sum(len(w) for w in words),
               "latency": args.latency_sentences, "rows": rows, "torch_f1": torch_f1}  # fmt: skip
    results["verdicts"] = verdicts(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    update_docs(args.docs, render(results), marker="cpu-ratio")
    print(render(results))


if __name__ == "__main__":
    main()
