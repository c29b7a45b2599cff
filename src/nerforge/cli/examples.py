"""One or more example command lines per subcommand, shown at the end of its ``--help`` (every subcommand has one:
a test holds this table to the registered commands)."""

from __future__ import annotations

EXAMPLES: dict[str, tuple[str, ...]] = {
    "init": ("nerforge init train.conll dev.conll test.conll -o job.toml", "nerforge train job.toml"),
    "inspect": (
        "nerforge inspect train.conll dev.conll test.conll",
        "nerforge inspect data/*.json --tokenizer default --report inspect-report",
    ),
    "convert": ("nerforge convert export.json train.conll", "nerforge convert tags.csv train.jsonl --scheme bioes"),
    "train": (
        "nerforge train --train train.conll --dev dev.conll --test test.conll -o model",
        "nerforge train job.toml --set training.epochs=20 --set 'data.split={dev=0.1, test=0.1}'",
        "nerforge train recipes/conll2003.toml --data-dir /data/datasets --head plain",
    ),
    "tune": (
        "nerforge tune --train train.conll --dev dev.conll --test test.conll --budget 30m -o tuned",
        "nerforge tune job.toml --budget 2h -o tuned    # job.toml's [tune] table: the search space",
        "nerforge tune job.toml --budget 2h -o tuned --resume",
    ),
    "distill": (
        "nerforge distill model --train train.conll --dev dev.conll --test test.conll --layers 3 -o model-l3",
        "nerforge distill model --train train.conll --unlabeled more-texts.txt --keep-layers 0,5 -o model-l2",
        "nerforge distill model --train train.conll --layers 2 --ffn-size 384 -o model-l2-narrow",
    ),
    "bench": (
        "nerforge bench model-int8 test.conll",
        "nerforge bench model test.conll --batch-sizes 1,8,64 --threads 1 --json -o speed.json",
    ),
    "evaluate": ("nerforge evaluate model test.conll", "nerforge evaluate model test.json --json > scores.json"),
    "predict": (
        "nerforge predict model texts.txt -o entities.jsonl",
        "nerforge predict model jobs.csv --text-column description -o jobs-tagged.csv",
        "nerforge predict model --text 'Senior Python developer, Kubernetes a plus' --show",
        "nerforge predict model https://example.com/job/123 --show",
        "nerforge predict model next-batch.txt --format label-studio -o next-batch.json --from-name label --to-name text",
    ),
    "annotate": (
        "nerforge annotate --terms skills.txt --label SKILL job-ads.txt --format label-studio -o round0.json",
        "nerforge annotate --terms terms.csv jobs.csv --text-column description -o jobs-silver.jsonl",
    ),
    "suggest": (
        "nerforge suggest model pool.txt --count 50 -o next.jsonl",
        "nerforge suggest model pool.csv --text-column body -n 100 --strategy diverse --format label-studio -o next.json",
    ),
    "export": ("nerforge export model --onnx --quantize int8 -o model-int8 --parity-data test.conll",),
    "serve": (
        "nerforge serve model --port 8000    # then open http://127.0.0.1:8000/",
        "nerforge serve model --host 0.0.0.0 --allowed-host ner.example.org    # reached by that name",
    ),
    "info": ("nerforge info model", "nerforge info model --json"),
}


def epilog(name: str) -> str | None:
    """The ``Examples`` block of one subcommand's help (rich markup off: shown as written)."""
    lines = EXAMPLES.get(name)
    if not lines:
        return None
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
