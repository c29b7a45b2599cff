"""Many entity types: peak memory and test F1 of the default head (shape features + CRF) against the plain head.

    python bench/many_types.py                          # 300 types, 2000 training sentences, 2 epochs
    python bench/many_types.py --types 400 --train-sample 1000 --epochs 1

XBRL-tagged financial filings (FiNER-139, FNXL) have hundreds of entity types; such data once grew the default CRF
to 13 GB (issue 27). This builds a synthetic set with that many types from CoNLL-2003 (under ``--shared``): each
entity's type becomes one of ``--types / 4`` subtypes of its CoNLL type, chosen by a hash of its lower-cased text,
so the same name always gets the same subtype (learnable from the words, as an XBRL concept mostly is) and the tag
count is ``2 * types + 1``. Then ``nerforge train`` runs once per head, each in a process of its own, with the
defaults but ``--epochs``; its peak resident memory (``wait4``), the memory it estimated before training (its log
line), the test F1 (strict IOB2) and the time are recorded.

Results: ``bench/results/many-types.json`` and the table between the ``many-types`` markers of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from train_compare import machine, update_docs  # noqa: E402


def subtyped(tags: tuple[str, ...], tokens: tuple[str, ...], per_type: int) -> list[str]:
    """IOB2 ``tags`` with each entity's type replaced by ``TYPE{k}``, ``k`` a hash of its text modulo ``per_type``."""
    from nerforge.data.schemes import tags_to_spans

    out = ["O"] * len(tags)
    for span in tags_to_spans(list(tags)):
        text = " ".join(tokens[span.start : span.end]).lower()
        label = f"{span.label}{zlib.crc32(text.encode()) % per_type}"
        out[span.start] = f"B-{label}"
        for i in range(span.start + 1, span.end):
            out[i] = f"I-{label}"
    return out


def build_data(shared: Path, work: Path, args: argparse.Namespace) -> dict[str, Path]:
    from nerforge.data.normalize import read_examples
    from nerforge.data.writers import write_conll
    from nerforge.types import Example

    rng = random.Random(13)
    files = {}
    for split, name, limit in (
        ("train", "train.txt", args.train_sample),
        ("dev", "valid.txt", args.dev_sample),
        ("test", "test.txt", args.test_sample),
    ):
        examples = [ex for ex in read_examples(shared / "conll2003" / name) if ex.tokens]
        if limit and limit < len(examples):
            examples = rng.sample(examples, limit)
        files[split] = work / f"{split}.conll"
        write_conll(
            [Example(ex.tokens, tuple(subtyped(ex.tags, ex.tokens, args.types // 4))) for ex in examples], files[split]
        )
    return files


def run_head(head: str, files: dict[str, Path], work: Path, args: argparse.Namespace) -> dict:
    out = work / f"model-{head}"
    cmd = [
        sys.executable,
        "-m",
        "nerforge",
        "train",
        "--train",
        str(files["train"]),
        "--dev",
        str(files["dev"]),
        "--test",
        str(files["test"]),
        "--output",
        str(out),
        "--head",
        head,
        "--epochs",
        str(args.epochs),
        "--no-tracking",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    started = time.perf_counter()
    with open(work / f"{head}.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    text = (work / f"{head}.log").read_text(encoding="utf-8")
    if os.waitstatus_to_exitcode(status) != 0:
        return {"head": head, "error": text.strip().splitlines()[-1], "peak_mb": usage.ru_maxrss // 1024}
    found = re.search(r"estimated peak memory: about ([\d.]+) (GB|MB)", text)
    estimate_mb = float(found.group(1)) * (1024 if found.group(2) == "GB" else 1) if found else None
    meta = json.loads((out / "nerforge.json").read_text(encoding="utf-8"))
    test = meta["metrics"]["test"]
    return {
        "head": head,
        "tags": len(meta["tags"]),
        "peak_mb": usage.ru_maxrss // 1024,
        "estimate_mb": estimate_mb,
        "test_f1": test["micro"]["f1"] if "micro" in test else test["f1"],
        "seconds": round(seconds, 1),
    }


def render(results: dict) -> str:
    lines = [
        f"Command: `{results['command']}`. Machine: {results['machine']}. Synthetic data from CoNLL-2003: "
        f"{results['types']} entity types ({results['tags']} tags), {results['train_sample']} training, "
        f"{results['dev_sample']} dev and {results['test_sample']} test sentences, {results['epochs']} epochs; "
        "peak = the process's peak resident memory, estimate = what `nerforge train` estimated before training.",
        "",
        "| head | test F1 | peak memory | estimated | train time |",
        "|---|---|---|---|---|",
    ]
    for r in results["heads"]:
        if "error" in r:
            lines.append(f"| {r['head']} | failed: {r['error']} | {r['peak_mb']} MB | | |")
            continue
        lines.append(
            f"| {r['head']} | {r['test_f1']:.4f} | {r['peak_mb']} MB | {r['estimate_mb']:.0f} MB | "
            f"{r['seconds']:.0f} s |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--types", type=int, default=300, help="entity types (a multiple of 4: CoNLL's four split)")
    parser.add_argument("--train-sample", type=int, default=2000)
    parser.add_argument("--dev-sample", type=int, default=300)
    parser.add_argument("--test-sample", type=int, default=1000)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--heads", nargs="+", default=["shape+crf", "plain"])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "many-types.json")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    private = {"--output", "--docs"}  # where this run wrote things, not how it measured
    shown = [a for i, a in enumerate(sys.argv[1:]) if a not in private and (i == 0 or sys.argv[i] not in private)]
    command = shlex.join(["python", "bench/many_types.py", *shown])
    with tempfile.TemporaryDirectory(prefix="nerforge-many-types-") as tmp:
        work = Path(tmp)
        files = build_data(args.shared, work, args)
        heads = []
        for head in args.heads:
            heads.append(run_head(head, files, work, args))
            print(json.dumps(heads[-1]), flush=True)
    results = {
        "command": command,
        "machine": machine(),
        "types": args.types,
        "tags": next((h["tags"] for h in heads if "tags" in h), None),
        "train_sample": args.train_sample,
        "dev_sample": args.dev_sample,
        "test_sample": args.test_sample,
        "epochs": args.epochs,
        "heads": heads,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    update_docs(args.docs, render(results), marker="many-types")
    print(render(results))


if __name__ == "__main__":
    main()
