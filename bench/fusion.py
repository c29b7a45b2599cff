"""Does ONNX Runtime's transformer optimizer (attention, layer-norm and GELU fusion before quantizing) make our
exports faster? Measures the export nerforge writes against the same graph fused, fp32 and int8, in one run.

    python bench/fusion.py --model MODEL_DIR --data TEST_FILE

The model is exported twice with ``nerforge export`` (fp32, int8); the fp32 graph is then fused with
``onnxruntime.transformers.optimizer.optimize_model`` (``model_type="bert"``, the encoder's heads and hidden size),
saved as a fused fp32 directory, and quantized the way nerforge quantizes (dynamic, per-channel int8 weights) with
``Attention`` added to the quantized op types (``QAttention``). Each of the four directories is timed by ``nerforge
bench`` (batch 1 and 32, ``--repeats`` runs, the best kept), F1 included.

Results: ``bench/results/fusion.json`` and the table between the ``fusion`` markers of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from train_compare import machine, update_docs  # noqa: E402

NERFORGE = [sys.executable, "-m", "nerforge"]


def fuse(fp32: Path, work: Path) -> tuple[Path, Path, dict[str, int]]:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((fp32 / "config.json").read_text(encoding="utf-8"))
    encoder = config.get("encoder", config)
    optimized = optimize_model(str(fp32 / "model.onnx"), model_type="bert",
                               num_heads=encoder.get("num_attention_heads", 0),
                               hidden_size=encoder.get("hidden_size", 0))  # fmt: skip
    fused = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
    fused_fp32 = work / "fused-fp32"
    shutil.copytree(fp32, fused_fp32)
    optimized.save_model_to_file(str(fused_fp32 / "model.onnx"))
    fused_int8 = work / "fused-int8"
    shutil.copytree(fp32, fused_int8)
    quantize_dynamic(str(fused_fp32 / "model.onnx"), str(fused_int8 / "model.onnx"),
                     op_types_to_quantize=["MatMul", "Attention"], per_channel=True, weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": 1})  # fmt: skip
    return fused_fp32, fused_int8, fused


def bench(model: Path, data: Path, repeats: int, work: Path, threads: int | None = None) -> dict:
    """``nerforge bench`` of ``model`` at batch 1 and 32, the best of ``repeats`` runs (``threads``: its --threads)."""
    best: dict[int, dict] = {}
    f1 = None
    for n in range(repeats):
        out = work / f"bench-{model.name}-t{threads}-{n}.json"
        extra = ["--threads", str(threads)] if threads else []
        subprocess.run([*NERFORGE, "bench", str(model), str(data), "--batch-sizes", "1,32", *extra, "--json", "-o",
                        str(out)], check=True, capture_output=True)  # fmt: skip
        report = json.loads(out.read_text(encoding="utf-8"))
        f1 = report.get("f1")
        for timing in report["timings"]:
            b = timing["batch_size"]
            if b not in best or timing["words_per_cpu_s"] > best[b]["words_per_cpu_s"]:
                best[b] = timing
    return {"model": model.name, "f1": f1, **{f"b{b}": {"words_per_s": t["words_per_s"],
                                                        "words_per_cpu_s": t["words_per_cpu_s"]}
                                              for b, t in sorted(best.items())}}  # fmt: skip


def render(results: dict) -> str:
    lines = [
        f"Command: `{results['command']}`. Machine: {results['machine']}. Fused operators: "
        f"{', '.join(f'{k} {v}' for k, v in results['fused'].items())}.",
        "",
        "| graph | F1 | words/s b1 | words/CPU-s b1 | words/s b32 | words/CPU-s b32 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['model']} | {r['f1']:.4f} | {r['b1']['words_per_s']:.0f} | {r['b1']['words_per_cpu_s']:.0f} | "
            f"{r['b32']['words_per_s']:.0f} | {r['b32']['words_per_cpu_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a nerforge model directory (PyTorch weights)")
    parser.add_argument("--data", type=Path, required=True, help="test sentences in a format nerforge reads")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "fusion.json")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    command = shlex.join(["python", "bench/fusion.py", "--model", str(args.model), "--data", str(args.data),
                          "--repeats", str(args.repeats)])  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="nerforge-fusion-") as tmp:
        work = Path(tmp)
        fp32, int8 = work / "fp32", work / "int8"
        subprocess.run(
            [*NERFORGE, "export", str(args.model), "--onnx", "-o", str(fp32)], check=True, capture_output=True
        )
        subprocess.run([*NERFORGE, "export", str(args.model), "--onnx", "--quantize", "int8", "-o", str(int8)], check=True,
                       capture_output=True)  # fmt: skip
        fused_fp32, fused_int8, fused = fuse(fp32, work)
        rows = [bench(m, args.data, args.repeats, work) for m in (fp32, fused_fp32, int8, fused_int8)]
    results = {"command": command, "machine": machine(), "fused": fused, "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    update_docs(args.docs, render(results), marker="fusion")
    print(render(results))


if __name__ == "__main__":
    main()
