"""Teacher against its distilled students (``nerforge distill``), with spaCy's small English pipeline in the table.

    python bench/distill.py                                   # conll2003, ncbi_disease, bc5cdr; students of 4, 3, 2 layers
    python bench/distill.py --datasets conll2003 --train-sample 4000 --teacher-epochs 2 --student-epochs 2
    python bench/distill.py --datasets conll2003 --layers 3 2 2:384            # LAYERS:FFN also narrows the FFN

For each dataset (its recipe under ``recipes/``, data under ``--shared``): train the teacher with the recipe (the
flags-only defaults of the recipe's head; ``--train-sample`` sentences, ``--teacher-epochs``), distill a student of
each ``--layers`` size from it (``L`` layers, or ``L:F`` for L layers with F feed-forward units, ``--ffn-size``; the
same training sentences, ``--student-epochs``, the rest of the training file up to ``--unlabeled`` sentences given as
unlabelled text), then for the teacher and every student: test F1 (PyTorch, strict IOB2, the whole test file), the
int8 ONNX export (``nerforge export --quantize int8``) and its speed measured by ``bench/speed_engines.py`` in a
process of its own (words/s and words per CPU-second at batch 1 and 32 over ``--speed-sentences`` test sentences, with
``--threads`` threads; and words per CPU-second at batch 32 with one thread, the setting that spends the fewest
CPU-seconds: spaCy's NER runs on one thread), the int8 model's size, and the training time. spaCy ``en_core_web_sm`` runs
on the CoNLL-2003 sentences through the same harness (its OntoNotes types mapped to CoNLL's; F1 over PER/LOC/ORG).

Results: ``bench/results/distill.json`` (written after each dataset) and the table between the ``distill`` markers of
``docs/benchmarks.md``; ``--render-only [FILES]`` merges result files and renders them without running anything.
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
HERE = REPO / "bench"
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from speed import engine_process  # noqa: E402
from train_compare import machine, update_docs  # noqa: E402

DATASETS = ("conll2003", "ncbi_disease", "bc5cdr")


def recipe_config(name: str, args: argparse.Namespace, output: Path, flags: dict) -> object:
    from nerforge.config import load_config

    base = {
        "output.dir": str(output),
        "tracking.enabled": False,
        "training.num_threads": args.threads,
        "data.sample": {k: v for k, v in (("train", args.train_sample), ("dev", args.dev_sample)) if v} | {"seed": 13}
        if (args.train_sample or args.dev_sample)
        else None,
        **flags,
    }
    return load_config(
        REPO / "recipes" / f"{name}.toml", flags={k: v for k, v in base.items() if v is not None}, data_dir=args.shared
    )


def unlabeled_file(config: object, args: argparse.Namespace, work: Path) -> Path | None:
    """Training sentences beyond the labelled sample, as plain text (one per line): the student's unlabelled texts."""
    if not args.unlabeled or not args.train_sample:
        return None
    from nerforge.data.splits import read_data_splits

    data = config.data.model_copy(update={"sample": None, "dev": None, "test": None, "split": None})
    sentences = read_data_splits(data)["train"]
    rest = sentences[args.train_sample : args.train_sample + args.unlabeled]
    if not rest:
        return None
    path = work / "unlabeled.txt"
    path.write_text("\n".join(" ".join(ex.tokens) for ex in rest) + "\n", encoding="utf-8")
    return path


def test_sentences(config: object, work: Path, limit: int) -> Path:
    from nerforge.data.splits import read_data_splits

    data = config.data.model_copy(update={"sample": None})
    test = read_data_splits(data)["test"][:limit]
    path = work / "speed-test.json"
    path.write_text(
        json.dumps({"words": [list(ex.tokens) for ex in test], "tags": [list(ex.tags) for ex in test]}),
        encoding="utf-8",
    )
    return path


def dir_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 1e6, 1)


def _speed_run(
    engine: str, model: Path | None, data: Path, args: argparse.Namespace, work: Path, threads: int, batch_sizes: str
) -> dict:
    out = work / f"speed-{engine}-{model.name if model else 'none'}-t{threads}.json"
    return engine_process(
        engine, model, data, out, threads=threads, batch_sizes=batch_sizes, latency_sentences=args.latency_sentences
    )


def speed(engine: str, model: Path | None, data: Path, args: argparse.Namespace, work: Path) -> dict:
    result = _speed_run(engine, model, data, args, work, args.threads, "1,32")
    if "skipped" in result:
        return {"error": f"{engine} skipped: {result['skipped']}"}
    batches = {str(b["batch_size"]): b for b in result["batches"]}
    single = _speed_run(engine, model, data, args, work, 1, "32")["batches"][0]
    return {
        "f1_int8": result.get("f1"),
        "f1_core": result.get("f1_core"),
        **{f"words_per_s_b{b}": round(batches[b]["words_per_s"], 1) for b in ("1", "32") if b in batches},
        **{
            f"words_per_cpu_s_b{b}": round(batches[b]["words_per_cpu_s"], 1)
            for b in ("1", "32")
            if b in batches and batches[b].get("words_per_cpu_s")
        },
        "words_per_cpu_s_b32_1t": round(single["words_per_cpu_s"], 1) if single.get("words_per_cpu_s") else None,
    }


def measure_model(name: str, model: Path, data: Path, args: argparse.Namespace, work: Path) -> dict:
    from nerforge.model_dir import ModelMeta

    meta = ModelMeta.load(model)
    test = (meta.metrics.get("test") or {}).get("micro", {})
    encoder = json.loads((model / "config.json").read_text()).get("encoder", {})
    training = meta.extra.get("training", {})
    entry = {
        "model": name,
        "layers": encoder.get("num_hidden_layers"),
        "ffn": encoder.get("intermediate_size"),
        "f1": test.get("f1"),
        "torch_mb": dir_mb(model),
        "epochs": training.get("epochs"),
        "stopped_early": training.get("stopped_early"),
    }
    if not args.no_speed:
        from nerforge.export import ExportOptions, export_onnx

        int8 = work / f"{model.name}-int8"
        export_onnx(model, int8, ExportOptions(quantize="int8"))
        entry.update({"int8_mb": dir_mb(int8), **speed("nerforge-onnx-int8", int8, data, args, work)})
    print(json.dumps(entry), flush=True)
    return entry


def run_dataset(name: str, args: argparse.Namespace, work: Path) -> dict:
    from nerforge.model_dir import ModelMeta
    from nerforge.training.distill import distill
    from nerforge.training.run import train
    from nerforge.training.teacher import teacher_settings

    work.mkdir(parents=True, exist_ok=True)
    teacher_dir = work / "teacher"
    config = recipe_config(name, args, teacher_dir, {"training.epochs": args.teacher_epochs})
    if args.teacher_epochs is None:  # what flags-only `nerforge train` does: the training defaults, not the recipe's
        from nerforge.config import TrainingConfig

        config = config.model_copy(update={"training": TrainingConfig(num_threads=args.threads)})
    started = time.perf_counter()
    if args.reuse_teacher and (teacher_dir / "model.safetensors").is_file():  # a teacher an earlier run trained here
        rows = [{"train_seconds": None, "reused": True}]
    else:
        train(config, progress=False)
        rows = [{"train_seconds": round(time.perf_counter() - started, 1)}]
    data = test_sentences(config, work, args.speed_sentences)
    unlabeled = unlabeled_file(config, args, work)
    meta = ModelMeta.load(teacher_dir)
    settings = dict(pair.split("=", 1) for pair in args.set)  # each value parsed as JSON where it is JSON
    for key, value in settings.items():
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            pass
    students = []
    for size, augment in [(s, a) for s in args.layers for a in (args.augment or [None])]:
        layers, _, ffn = size.partition(":")
        out = work / (
            f"student-l{layers}"
            + (f"-f{ffn}" if ffn else "")
            + (f"-a{augment}" if augment is not None and len(args.augment) > 1 else "")
            + (f"-{args.tag}" if args.tag else "")
        )
        flags = {
            "training.epochs": args.student_epochs,
            **teacher_settings(meta, teacher_dir),  # None: the default
            "distill.teacher": str(teacher_dir),
            "distill.layers": int(layers),
            "distill.ffn_size": int(ffn) if ffn else None,
            "distill.unlabeled": [str(unlabeled)] if unlabeled else [],
            **({"distill.augment": augment} if augment is not None else {}),
            **{k: v for k, v in settings.items() if not k.startswith("training.")},
        }
        config = recipe_config(name, args, out, flags)
        if args.student_epochs is None:  # what `nerforge distill` does: no config file, the training defaults
            from nerforge.config import TrainingConfig

            training = {k.removeprefix("training."): v for k, v in settings.items() if k.startswith("training.")}
            config = config.model_copy(update={"training": TrainingConfig(num_threads=args.threads, **training)})
        started = time.perf_counter()
        distill(config, progress=False)
        students.append((out, round(time.perf_counter() - started, 1)))
    entries = [{**measure_model("teacher", teacher_dir, data, args, work), **rows[0]}]
    for out, seconds in students:
        entries.append({**measure_model(out.name, out, data, args, work), "train_seconds": seconds})
    result = {
        "dataset": name,
        "models": entries,
        "test_sentences_timed": args.speed_sentences,
        "train_sample": args.train_sample,
        "dev_sample": args.dev_sample,
        "unlabeled": 0 if unlabeled is None else args.unlabeled,
        "teacher_epochs": args.teacher_epochs,
        "student_epochs": args.student_epochs,
        "no_speed": args.no_speed,
        "augment": args.augment,
    }
    if name == "conll2003" and not args.no_spacy and not args.no_speed:
        try:
            result["spacy_sm"] = speed("spacy-sm", None, data, args, work)
        except subprocess.CalledProcessError as exc:
            result["spacy_sm"] = {"error": f"spaCy could not run: {exc}"}
    return result


def _epochs(value: object, who: str = "student") -> str:
    if value is not None:
        return f"{value} epochs"
    return (
        f"nerforge {'distill' if who == 'student' else 'train'}'s training defaults (up to 10 epochs, early "
        "stopping on dev F1)"
    )


def targets(results: dict) -> list[str]:
    lines = []
    for name, res in results.items():
        if not isinstance(res, dict) or "models" not in res or name == "conll2003":
            continue
        models = {m["model"]: m for m in res["models"]}
        teacher, l3 = models.get("teacher"), models.get("student-l3")
        if teacher and l3 and teacher.get("f1") is not None and l3.get("f1") is not None:
            drop = 100 * (teacher["f1"] - l3["f1"])
            lines.append(
                f"- 3-layer student on {name}: {drop:+.2f} F1 points below the teacher (target: at most 1.5) "
                f"— {'met' if drop <= 1.5 else 'not met'}."
            )
    conll = results.get("conll2003")
    if conll:
        models = {m["model"]: m for m in conll["models"]}
        teacher, l3 = models.get("teacher"), models.get("student-l3")
        if teacher and l3 and teacher.get("f1") is not None and l3.get("f1") is not None:
            drop = 100 * (teacher["f1"] - l3["f1"])
            line = (
                f"- 3-layer student on conll2003: {drop:+.2f} F1 points below the teacher (target: at most "
                f"1.5) — {'met' if drop <= 1.5 else 'not met'}"
            )
            if l3.get("words_per_s_b32") and teacher.get("words_per_s_b32"):
                ratio = l3["words_per_s_b32"] / teacher["words_per_s_b32"]
                line += (
                    f"; {ratio:.2f}x the teacher's int8 words/s at batch 32 (target: at least 1.7x) — "
                    f"{'met' if ratio >= 1.7 else 'not met'}"
                )
            lines.append(line + ".")
        spacy = conll.get("spacy_sm") or {}
        students = [m for m in conll["models"] if m["model"] != "teacher"]
        for key, how in (
            ("words_per_cpu_s_b32", f"with {conll.get('threads', 2)} threads"),
            ("words_per_cpu_s_b32_1t", "with one thread each"),
        ):
            best = max(students, key=lambda m: m.get(key) or 0, default=None)
            if best is None or not best.get(key) or not spacy.get(key):
                continue
            ratio = best[key] / spacy[key]
            lines.append(
                f"- Best student ({best['model']}, F1 {best['f1']:.4f}) against spaCy sm in words per "
                f"CPU-second at batch 32, {how}: {ratio:.2f}x (target: at least 1x) — "
                f"{'met' if ratio >= 1 else 'not met'}."
            )
    return lines


def _settings_line(name: str, res: dict) -> str:
    ran = {m["model"]: m.get("epochs") for m in res.get("models", []) if m.get("epochs") is not None}
    trained = ", ".join(f"{k} {v:g}" for k, v in ran.items())
    speed = (
        f"; speed over {res.get('test_sentences_timed')} test sentences"
        if not res.get("no_speed")
        else "; no speed measured (F1 only)"
    )
    return (
        f"- {name}: `{res.get('command', '?')}` — teacher {_epochs(res.get('teacher_epochs'), 'teacher')} on "
        f"{res.get('train_sample') or 'all'} training sentences ({res.get('dev_sample') or 'all'} dev sentences "
        f"pick the best epoch); students {_epochs(res.get('student_epochs'))} on the same sentences plus "
        f"{res.get('unlabeled')} unlabelled ones{speed}" + (f"; epochs run: {trained}" if trained else "") + "."
    )


def render(results: dict, command: str) -> str:
    lines = [
        f"Machine: {results.get('machine', '?')}.",
        "",
        "| dataset | model | layers | FFN | test F1 (torch) | F1 (int8, timed sentences) | int8 MB | words/s b1 | words/s b32 | "
        "words/CPU-s b1 | words/CPU-s b32 | words/CPU-s b32, 1 thread | training s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def num(x: object, fmt: str) -> str:
        return format(x, fmt) if isinstance(x, (int, float)) else "–"

    datasets = {name: res for name, res in results.items() if isinstance(res, dict) and "models" in res}
    for name, res in datasets.items():
        for m in res["models"]:
            lines.append(
                f"| {name} | {m['model']} | {num(m.get('layers'), 'd')} | {num(m.get('ffn'), 'd')} | "
                f"{num(m.get('f1'), '.4f')} | {num(m.get('f1_int8'), '.4f')} | {num(m.get('int8_mb'), '.1f')} | "
                f"{num(m.get('words_per_s_b1'), '.0f')} | {num(m.get('words_per_s_b32'), '.0f')} | "
                f"{num(m.get('words_per_cpu_s_b1'), '.0f')} | {num(m.get('words_per_cpu_s_b32'), '.0f')} | "
                f"{num(m.get('words_per_cpu_s_b32_1t'), '.0f')} | {num(m.get('train_seconds'), '.0f')} |"
            )
        spacy = res.get("spacy_sm")
        if spacy and "error" not in spacy:
            lines.append(
                f"| {name} | spaCy en_core_web_sm | – | – | – | {num(spacy.get('f1_core'), '.4f')} "
                f"(PER/LOC/ORG) | – | {num(spacy.get('words_per_s_b1'), '.0f')} | "
                f"{num(spacy.get('words_per_s_b32'), '.0f')} | {num(spacy.get('words_per_cpu_s_b1'), '.0f')} | "
                f"{num(spacy.get('words_per_cpu_s_b32'), '.0f')} | "
                f"{num(spacy.get('words_per_cpu_s_b32_1t'), '.0f')} | – |"
            )
    lines += [
        "",
        "Teacher: the recipe's head on MiniLM-L6; int8 ONNX Runtime, one process per model and setting. "
        "Each dataset's run:",
        "",
    ]
    lines += [_settings_line(name, {"command": command, **res}) for name, res in datasets.items()]
    lines += [""] + targets(results)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--layers", nargs="+", default=["4", "3", "2"], help="student sizes: LAYERS or LAYERS:FFN")
    parser.add_argument("--train-sample", type=int, default=0, help="training sentences (0: all)")
    parser.add_argument("--dev-sample", type=int, default=0, help="dev sentences scored each epoch (0: all)")
    parser.add_argument("--unlabeled", type=int, default=0, help="further training sentences given unlabelled")
    parser.add_argument(
        "--teacher-epochs",
        type=float,
        default=None,
        help="default: nerforge train's training defaults (the recipe's training section is not used)",
    )
    parser.add_argument(
        "--student-epochs",
        type=float,
        default=None,
        help="default: nerforge distill's training defaults (the recipe's training section is not "
        "used, as on the command line)",
    )
    parser.add_argument("--no-speed", action="store_true", help="test F1 only: no int8 export, no timing")
    parser.add_argument(
        "--augment",
        type=int,
        nargs="+",
        default=None,
        help="distill.augment, one student per value (default: nerforge distill's)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a student setting, e.g. distill.alpha=0.9 or training.early_stopping_patience=5",
    )
    parser.add_argument("--tag", default="", help="a suffix for the students' directory names (one try of settings)")
    parser.add_argument("--marker", default="distill", help="the docs/benchmarks.md section to write")
    parser.add_argument("--speed-sentences", type=int, default=1000, help="test sentences timed at batch 32")
    parser.add_argument("--latency-sentences", type=int, default=200, help="test sentences timed one by one")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--no-spacy", action="store_true")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "distill.json")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="keep the models here (default: a temporary folder)"
    )
    parser.add_argument(
        "--reuse-teacher",
        action="store_true",
        help="keep a teacher an earlier run left in --work-dir (students only are trained)",
    )
    parser.add_argument("--render-only", nargs="*", type=Path, metavar="RESULTS")
    args = parser.parse_args()
    if args.render_only is not None:
        results: dict = {}
        for path in args.render_only or [args.output]:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            for value in loaded.values():  # each dataset keeps the command of the run that made it
                if isinstance(value, dict) and "models" in value:
                    value.setdefault("command", loaded.get("_command", "python bench/distill.py"))
            results.update(loaded)
        update_docs(args.docs, render(results, results.pop("_command", "python bench/distill.py")), marker=args.marker)
        return
    private = {"--work-dir", "--output", "--docs", "--marker"}  # where this run wrote things, not how it measured
    shown_args = [a for i, a in enumerate(sys.argv[1:]) if a not in private and (i == 0 or sys.argv[i] not in private)]
    command = shlex.join(["python", "bench/distill.py", *shown_args])
    results = {"_command": command, "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="nerforge-distill-") as tmp:
        work = args.work_dir or Path(tmp)
        for name in args.datasets:
            results[name] = {**run_dataset(name, args, work / name), "command": command, "threads": args.threads}
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    shown = {k: v for k, v in results.items() if k != "_command"}
    update_docs(args.docs, render(shown, command), marker=args.marker)
    print(render(shown, command))


if __name__ == "__main__":
    main()
