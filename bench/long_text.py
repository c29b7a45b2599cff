"""Long texts: the peak memory of ``nerforge predict`` on a one-line ``.txt`` as the line grows.

    python bench/long_text.py --model MODEL_DIR                       # lines of 0.25, 1 and 4 MB
    python bench/long_text.py --model MODEL_DIR --sizes 0.5 2 8

Each line is the words of NCBI-disease's training file (under ``--shared``) repeated to the size, one line; each
size is tagged by ``nerforge predict`` in a process of its own, whose peak resident memory (``wait4``), time and
entity count are recorded. The slope between the smallest and the largest line (MB of peak memory per MB of text)
is what a long text costs; what it cannot avoid is the text itself, its entities and the output record.

Results: ``bench/results/long-text.json`` and the table between the ``long-text`` markers of ``docs/benchmarks.md``.
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

from train_compare import machine, update_docs  # noqa: E402


def one_line(source: Path, megabytes: float) -> str:
    words = [line.split("\t", 1)[0].strip() for line in source.read_text(encoding="utf-8").splitlines()]
    base = " ".join(w for w in words if w)
    size = int(megabytes * 2**20)
    text = " ".join([base] * (size // (len(base) + 1) + 1))
    return text[:size].rsplit(" ", 1)[0]


def run_size(model: Path, megabytes: float, source: Path, work: Path, threads: int) -> dict:
    src, out = work / f"line-{megabytes}.txt", work / f"line-{megabytes}.jsonl"
    src.write_text(one_line(source, megabytes) + "\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "nerforge", "predict", str(model), str(src), "-o", str(out), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        return {"mb": megabytes, "error": (proc.stderr.read() if proc.stderr else b"").decode().strip()[-300:]}
    record = json.loads(out.read_text(encoding="utf-8"))
    return {
        "mb": megabytes,
        "chars": len(record["text"]),
        "entities": len(record["entities"]),
        "peak_mb": usage.ru_maxrss // 1024,
        "seconds": round(seconds, 1),
    }


def render(results: dict) -> str:
    lines = [
        f"Command: `{results['command']}`. Machine: {results['machine']}. Model: {results['model']}. One line of "
        "NCBI-disease words per size, `nerforge predict` in a process of its own; peak = its peak resident memory.",
        "",
        "| line | characters | entities | peak memory | time |",
        "|---|---|---|---|---|",
    ]
    for r in results["sizes"]:
        if "error" in r:
            lines.append(f"| {r['mb']} MB | failed: {r['error']} | | | |")
            continue
        lines.append(
            f"| {r['mb']} MB | {r['chars']:,} | {r['entities']:,} | {r['peak_mb']} MB | {r['seconds']:.0f} s |"
        )
    if results.get("slope_mb_per_mb") is not None:
        lines += ["", f"Peak memory grows {results['slope_mb_per_mb']:.0f} MB per MB of text."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a nerforge model directory")
    parser.add_argument("--sizes", nargs="+", type=float, default=[0.25, 1, 4], help="line sizes in MB")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "long-text.json")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    source = args.shared / "ncbi_disease" / "train.tsv"
    if not source.is_file():
        sys.exit(f"{source} not found; pass --shared")
    private = {"--output", "--docs"}
    shown = [a for i, a in enumerate(sys.argv[1:]) if a not in private and (i == 0 or sys.argv[i] not in private)]
    with tempfile.TemporaryDirectory(prefix="nerforge-long-text-") as tmp:
        sizes = []
        for megabytes in sorted(args.sizes):
            sizes.append(run_size(args.model, megabytes, source, Path(tmp), args.threads))
            print(json.dumps(sizes[-1]), flush=True)
    done = [r for r in sizes if "error" not in r]
    slope = (
        (done[-1]["peak_mb"] - done[0]["peak_mb"]) / (done[-1]["mb"] - done[0]["mb"])
        if len(done) > 1 and done[-1]["mb"] > done[0]["mb"]
        else None
    )
    results = {
        "command": shlex.join(["python", "bench/long_text.py", *shown]),
        "machine": machine(),
        "model": args.model.name,
        "sizes": sizes,
        "slope_mb_per_mb": slope,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    update_docs(args.docs, render(results), marker="long-text")
    print(render(results))


if __name__ == "__main__":
    main()
