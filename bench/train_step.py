"""Where one training step's time goes, for the optimizer and precision choices in ``nerforge.training.trainer``.

    python bench/train_step.py --threads 2 --output bench/results/train_step.json

Times forward, backward and optimizer step (ms, mean of ``--steps`` after 3 warm-up steps) of the default encoder
with a token-classification head on a random batch (16 x 28 subwords, about a CoNLL sentence) for: AdamW, fused
AdamW, and fused AdamW under bf16 autocast. Writes a JSON file and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
VARIANTS = {"adamw": (False, False), "fused adamw": (True, False), "fused adamw + bf16 autocast": (True, True)}


def time_variant(base: str, *, fused: bool, bf16: bool, steps: int) -> dict[str, float]:
    import torch
    from transformers import AutoModelForTokenClassification

    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(base, num_labels=9)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=fused)
    ids = torch.randint(1000, 20000, (16, 28))
    labels = torch.randint(0, 9, (16, 28))
    model.train()
    totals = [0.0, 0.0, 0.0]
    for i in range(steps + 3):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad()
        t3 = time.perf_counter()
        if i >= 3:
            for k, dt in enumerate((t1 - t0, t2 - t1, t3 - t2)):
                totals[k] += dt
    fwd, bwd, opt = (1000 * t / steps for t in totals)
    return {"forward_ms": fwd, "backward_ms": bwd, "optimizer_ms": opt, "total_ms": fwd + bwd + opt}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "train_step.json")
    args = parser.parse_args(argv)
    import torch

    from nerforge.io_utils import atomic_write_text
    from nerforge.model_dir import resolve_model

    torch.set_num_threads(args.threads)
    base = resolve_model("default")
    rows = {name: time_variant(str(base), fused=f, bf16=b, steps=args.steps) for name, (f, b) in VARIANTS.items()}
    report = {
        "command": "python bench/train_step.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "threads": args.threads,
        "load_average": os.getloadavg(),
        "rows": rows,
    }
    atomic_write_text(args.output, json.dumps(report, indent=2) + "\n")
    print("| variant | forward ms | backward ms | optimizer ms | total ms |\n|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['forward_ms']:.1f} | {r['backward_ms']:.1f} | {r['optimizer_ms']:.1f} | {r['total_ms']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
