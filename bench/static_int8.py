"""Static int8 (activations quantized with ranges calibrated on training sentences) against the dynamic int8 that
``nerforge export --quantize int8`` writes (issue 31, item 1), one thread and two, batch 1 and 32, in one run.

    python bench/static_int8.py --model MODEL_DIR --calibration TRAIN_FILE --data TEST_FILE

The model is exported with ``nerforge export`` (fp32 and dynamic int8). The fp32 graph is then quantized statically
with ONNX Runtime's ``quantize_static``: per-channel int8 weights, uint8 activations whose ranges come from running
the fp32 graph on ``--calibration-sentences`` training sentences (the very inputs nerforge's tagger feeds it,
recorded while it tags them), in the QDQ and the QOperator formats. ``nerforge bench`` times each directory (batch 1
and 32, ``--threads`` 1 and 2, the best of ``--repeats`` runs) and scores its F1 on DATA.

Results: ``--output`` and the table between the ``static-int8`` markers of ``--docs``.
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
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from fusion import bench as fusion_bench  # noqa: E402
from train_compare import machine, update_docs  # noqa: E402

NERFORGE = [sys.executable, "-m", "nerforge"]


def record_feeds(fp32: Path, calibration: Path, sentences: int) -> list[dict]:
    """The feeds nerforge's tagger gives the fp32 graph while it tags ``sentences`` calibration sentences."""
    from nerforge.data.normalize import read_examples
    from nerforge.data.readers.saved import from_saved
    from nerforge.prediction import Tagger

    tagger = Tagger.load(fp32, batch_size=32, progress=False, backend="onnx")
    examples = read_examples(calibration, from_saved(tagger.meta.reading))[:sentences]
    session = tagger.engine.backend.session
    feeds: list[dict] = []
    run = session.run

    def recording(names, feed, *rest):  # noqa: ANN001, ANN202 - onnxruntime's signature
        feeds.append({k: v.copy() for k, v in feed.items()})
        return run(names, feed, *rest)

    session.run = recording
    tagger.predict_words([list(ex.tokens) for ex in examples])
    return feeds


def quantize(fp32: Path, feeds: list[dict], out: Path, fmt: str) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self.items, None)

    shutil.copytree(fp32, out)
    prepared = out / "prepared.onnx"
    try:
        quant_pre_process(str(fp32 / "model.onnx"), str(prepared), skip_symbolic_shape=True)
    except Exception as exc:  # noqa: BLE001 - pre-processing is optional
        print(f"pre-processing skipped: {exc}", file=sys.stderr)
        shutil.copy(fp32 / "model.onnx", prepared)
    quantize_static(str(prepared), str(out / "model.onnx"), Reader(),
                    quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                    op_types_to_quantize=["MatMul"], per_channel=True, weight_type=QuantType.QInt8,
                    activation_type=QuantType.QUInt8,
                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})  # fmt: skip
    prepared.unlink()
    return out


def bench(model: Path, data: Path, threads: int, repeats: int, work: Path) -> dict:
    return {**fusion_bench(model, data, repeats, work, threads), "threads": threads}


def render(results: dict) -> str:
    lines = [f"Command: `{results['command']}`. Machine: {results['machine']}. Calibration: "
             f"{results['calibration_feeds']} batches of the tagger's own inputs.", "",
             "| graph | threads | F1 | words/s b1 | words/CPU-s b1 | words/s b32 | words/CPU-s b32 |",
             "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results["rows"]:
        lines.append(f"| {r['model']} | {r['threads']} | {r['f1']:.4f} | {r['b1']['words_per_s']:.0f} | "
                     f"{r['b1']['words_per_cpu_s']:.0f} | {r['b32']['words_per_s']:.0f} | "
                     f"{r['b32']['words_per_cpu_s']:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a nerforge model directory (PyTorch weights)")
    parser.add_argument("--calibration", type=Path, required=True, help="training sentences (annotated file)")
    parser.add_argument("--data", type=Path, required=True, help="test sentences in a format nerforge reads")
    parser.add_argument("--calibration-sentences", type=int, default=256)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--formats", nargs="+", default=["qdq", "qoperator"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "static-int8.json")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    command = "python bench/static_int8.py " + shlex.join(sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="nerforge-static-") as tmp:
        work = Path(tmp)
        fp32, dynamic = work / "fp32", work / "dynamic-int8"
        subprocess.run(
            [*NERFORGE, "export", str(args.model), "--onnx", "-o", str(fp32)], check=True, capture_output=True
        )
        subprocess.run([*NERFORGE, "export", str(args.model), "--onnx", "--quantize", "int8", "-o", str(dynamic)],
                       check=True, capture_output=True)  # fmt: skip
        feeds = record_feeds(fp32, args.calibration, args.calibration_sentences)
        graphs = [dynamic] + [quantize(fp32, feeds, work / f"static-int8-{fmt}", fmt) for fmt in args.formats]
        rows = [bench(g, args.data, t, args.repeats, work) for t in args.threads for g in graphs]
    results = {"command": command, "machine": machine(), "calibration_feeds": len(feeds), "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    update_docs(args.docs, render(results), marker="static-int8")
    print(render(results))


if __name__ == "__main__":
    main()
