"""Head options one at a time against the plain head: train each variant with the same data, budget and seed, and
report dev/test strict IOB2 micro F1 and the training time.

    python bench/head_ablation.py --name jobs --config examples/jobs/quickstart.toml --out runs/ablation/jobs \
        --variants plain shape crf class_weights --set training.epochs=6

Each variant is ``nerforge train CONFIG --set ...`` plus the variant's ``model.*`` keys (see VARIANTS); results are
appended to ``OUT/results.jsonl`` (one line per run, so an interrupted sweep keeps what it measured) and printed as a
Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

VARIANTS: dict[str, list[str]] = {
    "plain": [],
    "shape": ["model.features=[shape]"],
    "crf": ["model.crf=true"],
    "context1": ["model.context_sentences=1"],
    "class_weights": ["model.class_weights=balanced"],
    "shape+crf": ["model.features=[shape]", "model.crf=true"],
    "shape+context1": ["model.features=[shape]", "model.context_sentences=1"],
    "shape+crf+context1": ["model.features=[shape]", "model.crf=true", "model.context_sentences=1"],
}


def run(name: str, config: str, out: Path, variant: str, overrides: list[str]) -> dict[str, object]:
    model = out / variant
    cmd = [sys.executable, "-m", "nerforge.cli", "train", config, "--output", str(model), "--no-tracking"]
    for item in [*overrides, *VARIANTS[variant]]:
        cmd += ["--set", item]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = round(time.perf_counter() - started, 1)
    meta = json.loads((model / "nerforge.json").read_text())
    metrics = meta["metrics"]
    row = {
        "dataset": name,
        "variant": variant,
        "head": meta["head"],
        "dev_f1": metrics.get("dev", {}).get("micro", {}).get("f1"),
        "test_f1": metrics.get("test", {}).get("micro", {}).get("f1"),
        "steps": meta["extra"]["training"]["global_step"],
        "seconds": seconds,
        "command": " ".join(cmd),
    }
    with (out / "results.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
    return row


def table(rows: list[dict[str, object]]) -> str:
    lines = ["| dataset | variant | head | dev F1 | test F1 | steps | seconds |", "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        dev = f"{r['dev_f1']:.4f}" if r["dev_f1"] is not None else "–"
        test = f"{r['test_f1']:.4f}" if r["test_f1"] is not None else "–"
        lines.append(
            f"| {r['dataset']} | {r['variant']} | `{r['head']}` | {dev} | {test} | {r['steps']} | {r['seconds']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--variants", nargs="+", default=["plain", "shape", "crf", "class_weights"])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant in args.variants:
        rows.append(run(args.name, args.config, args.out, variant, args.overrides))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
