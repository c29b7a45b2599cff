"""The Viterbi decoder on a chunk of real sentence lengths, against decoding every chain padded to the longest (the
decoder before it stepped only the chains still running), in one run.

    python bench/viterbi.py                      # CoNLL-2003 test sentence lengths, 9 tags, 1,000 sentences
    python bench/viterbi.py --data FILE --sentences 3453 --tags 9

Emissions and transitions are random (the time does not depend on their values); both decoders must return the
same paths. Prints a Markdown table and writes ``--output``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from train_compare import machine  # noqa: E402

from nerforge.modeling.viterbi import viterbi_many  # noqa: E402


def padded_baseline(chains: list[np.ndarray], start: np.ndarray, end: np.ndarray, trans: np.ndarray) -> list:
    """Every chain padded to the longest and stepped at every position (a finished chain's score carried along)."""
    lengths = np.array([c.shape[0] for c in chains])
    width, n, k = int(lengths.max()), len(chains), trans.shape[0]
    emissions = np.zeros((n, width, k))
    for row, chain in enumerate(chains):
        emissions[row, : chain.shape[0]] = chain
    score = start + emissions[:, 0]
    identity = np.broadcast_to(np.arange(k), (n, k))
    back = np.empty((n, width, k), dtype=np.int64)
    back[:, 0] = identity
    for t in range(1, width):
        cand = score[:, :, None] + trans
        live = (t < lengths)[:, None]
        back[:, t] = np.where(live, cand.argmax(axis=1), identity)
        score = np.where(live, cand.max(axis=1) + emissions[:, t], score)
    path = np.empty((n, width), dtype=np.int64)
    path[:, -1] = (score + end).argmax(axis=1)
    rows = np.arange(n)
    for t in range(width - 1, 0, -1):
        path[:, t - 1] = back[rows, t, path[:, t]]
    return [path[row, :m] for row, m in enumerate(lengths.tolist())]


def sentence_lengths(path: Path, limit: int) -> list[int]:
    lengths, n = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("-DOCSTART-"):
            n += 1
        elif n:
            lengths.append(n)
            n = 0
    if n:
        lengths.append(n)
    return lengths[:limit]


def timed(fn, *args, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "conll2003" / "test.txt")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--tags", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "viterbi.json")
    args = parser.parse_args()
    lengths = sentence_lengths(args.data, args.sentences)
    rng = np.random.default_rng(0)
    chains = [rng.normal(size=(n, args.tags)) for n in lengths]
    start, end, trans = rng.normal(size=args.tags), rng.normal(size=args.tags), rng.normal(size=(args.tags, args.tags))
    ours, baseline = viterbi_many(chains, start, end, trans), padded_baseline(chains, start, end, trans)
    if not all(np.array_equal(a, b) for a, b in zip(ours, baseline, strict=True)):
        raise SystemExit("the two decoders disagree")
    result = {
        "machine": machine(),
        "data": str(args.data),
        "sentences": len(lengths),
        "longest": max(lengths),
        "tags": args.tags,
        "padded_ms": round(1000 * timed(padded_baseline, chains, start, end, trans, repeats=args.repeats), 1),
        "running_ms": round(1000 * timed(viterbi_many, chains, start, end, trans, repeats=args.repeats), 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"| sentences (longest) | tags | padded to the longest | running chains only | speed-up |\n|---:|---:|---:|---:|---:|\n"
        f"| {result['sentences']} ({result['longest']}) | {args.tags} | {result['padded_ms']} ms | "
        f"{result['running_ms']} ms | {result['padded_ms'] / result['running_ms']:.1f}x |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
