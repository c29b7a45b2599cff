"""``nerforge tune [CONFIG] --budget 30m --output DIR``: the best model a time budget can buy; a thin wrapper over
:func:`nerforge.tuning.study.run_study`.

    nerforge tune --train train.conll --dev dev.conll --test test.conll --budget 30m --output runs/tuned
    nerforge tune job.toml --budget 2h --output runs/tuned      # job.toml's [tune] table sets the search space
    nerforge tune job.toml --budget 2h --output runs/tuned --resume

Every data flag of ``train`` applies; ``--set`` overrides the config's keys for every trial.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

import typer

from nerforge.cli.options import flag_overrides, with_data_flags
from nerforge.errors import UsageError

logger = logging.getLogger("nerforge.tuning.study")


@with_data_flags
def tune_cli(
    config: Path | None = typer.Argument(None, help="A TOML or YAML config; its \\[tune] table is the search space."),
    budget: str = typer.Option(
        ...,
        "--budget",
        metavar="DURATION",
        help="Wall-clock time for the whole study, final model included: 30m, 2h, 1h30m, 900s.",
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="The study's folder: model/, best.toml, leaderboard, plots, study.db."
    ),
    set_: list[str] | None = typer.Option(
        None, "--set", metavar="KEY=VALUE", help="Override a config key in every trial (e.g. --set training.epochs=5)."
    ),
    train: list[Path] | None = typer.Option(None, "--train", metavar="FILE", help="Training split; repeatable."),
    dev: list[Path] | None = typer.Option(
        None, "--dev", metavar="FILE", help="Dev split: what trials are scored and pruned on; repeatable."
    ),
    test: list[Path] | None = typer.Option(
        None,
        "--test",
        metavar="FILE",
        help="Test split, never read during the search; the best and the default models are scored on it at the end.",
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="The encoder ('default', a directory or a hub id); "
        "several in \\[tune] model = [...] makes it a searched choice.",
    ),
    seed: int = typer.Option(42, "--seed", help="Every trial's seed, and the sampler's."),
    resume: bool = typer.Option(False, "--resume", help="Continue the study in OUTPUT (after a kill or Ctrl-C)."),
    no_tracking: bool = typer.Option(False, "--no-tracking", help="Do not log the trials to MLflow."),
    refit_on_dev: bool = typer.Option(
        False,
        "--refit-on-dev",
        help="Train the final model with the best settings "
        "on train+dev, for the best trial's best epoch count (time is kept for it).",
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        metavar="N",
        help="Trials run at once, each in a process of its own with its share of the CPU cores (they share the study).",
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        metavar="ADDR",
        help="Run the trials on this Ray cluster "
        "through Ray Tune (auto, host:6379 or ray://host:10001); OUTPUT and the data "
        "must be at the same paths on every node.",
    ),
    cpus_per_trial: int | None = typer.Option(
        None,
        "--cpus-per-trial",
        min=1,
        metavar="N",
        help="With --address: CPUs (training threads) of each trial [default: 2, or fewer where the nodes have fewer].",
    ),
    *,
    data_flags: dict[str, Any],
) -> None:
    """Search training settings (learning rate, head, batch size, warm-up, ...) for the best dev F1 within a budget."""
    from nerforge.config import load_config, parse_overrides
    from nerforge.tuning.budget import parse_budget
    from nerforge.tuning.space import default_space, parse_space

    budget_s = parse_budget(budget)
    flags = flag_overrides(data_flags, train=train, dev=dev, test=test, model=model, seed=seed)
    flags["output.dir"] = str((output / "trials" / "base").resolve())
    if no_tracking:
        flags["tracking.enabled"] = False
    base = load_config(config, parse_overrides(set_ or []), flags=flags)
    base.check_complete()
    if base.data.dev is None and not (base.data.split and base.data.split.dev):
        raise UsageError("nerforge tune scores trials on dev data: give --dev FILE, or data.split.dev in the config")
    from nerforge.training.preflight import check_inputs

    check_inputs(base)
    traits = _data_traits(base)
    if base.tune:
        space_raw = base.tune
    else:
        space_raw = default_space(has_documents=traits.documents, nests=traits.nests, epochs_cap=base.training.epochs,
                                  layers=traits.layers)  # fmt: skip
    space = parse_space(space_raw)
    _check_layer_weights(space, traits.layers)
    from nerforge.config import TrainConfig
    from nerforge.training import train as run_training
    from nerforge.tuning.study import run_study, trial_config
    from nerforge.tuning.workers import run_workers

    if address is not None and workers > 1:
        raise UsageError("--workers runs trials on this machine, --address on a Ray cluster: give one of them")
    if cpus_per_trial is not None and address is None:
        raise UsageError("--cpus-per-trial is for trials on a Ray cluster (--address)")
    if address is not None:  # before the study is created: a wrong address leaves nothing behind
        from nerforge.cluster import check_reachable

        check_reachable(address)
    values = base.model_dump(mode="json")

    def make_config(keys: dict[str, Any], directory: Path) -> TrainConfig:
        return trial_config(values, keys, directory, output.name)  # the test split is never read during the search

    evaluate_test = None
    if base.data.test is not None:
        test_files = base.data.test if isinstance(base.data.test, list) else [base.data.test]

        def evaluate_test(model_dir: Path) -> float | None:
            from nerforge.prediction.evaluate import evaluate

            return float(evaluate(model_dir, [Path(f) for f in test_files], make_plots=False).result.micro.f1)

    logger.info("search space: %s", "; ".join(f"{n} {d.describe()}" for n, d in space.items()))
    study_run = None
    if base.tracking.enabled:  # the study's MLflow run; every trial's run is nested under it
        from nerforge.training.tracking import MlflowTracker

        study_run = MlflowTracker.start(base.tracking.model_copy(update={"run_name": f"{output.name}-study"}),
                                        tags={"nerforge.tune": str(output.resolve())})  # fmt: skip
        study_run.log_params({"budget_s": budget_s, "seed": seed,
                              **{f"space.{n}": d.describe() for n, d in space.items()}})  # fmt: skip
        values["tracking"] = {**values["tracking"], "parent_run_id": study_run.run_id}
    try:
        from nerforge.threads import usable_cpus

        def refit(trial_dir: Path, epochs: int) -> Path:
            from nerforge.tuning.refit import refit_values

            final = output.resolve() / "model"
            resolved = refit_values(trial_dir, epochs, final)
            resolved["tracking"] = {**resolved["tracking"], "run_name": f"{output.name}-refit"}
            run_training(TrainConfig.model_validate(resolved), progress=False)
            return final

        def on_ray(_: int, deadline: float) -> None:
            import time

            from nerforge.tuning.ray_search import run_on_ray

            left = deadline - time.monotonic()
            run_on_ray(
                address or "",
                portable(values),
                space,
                output.resolve(),
                budget_s=left - min(30.0, 0.05 * left),
                seed=seed,
                cpus_per_trial=cpus_per_trial,
            )

        def locally(n: int, deadline: float) -> None:
            run_workers(output.resolve(), dict(space_raw), values, seed, n, deadline, usable_cpus())

        result = run_study(make_config, space, output.resolve(), budget_s=budget_s, seed=seed, resume=resume,
                           trainer=run_training, evaluate_test=evaluate_test, workers=workers,
                           refit=refit if refit_on_dev else None, parallel=on_ray if address else locally,
                           remote=address is not None)  # fmt: skip
    except BaseException:
        if study_run is not None:
            study_run.end("FAILED")
        raise
    if study_run is not None:
        metrics = {"trials": result.trials, "pruned": result.pruned, "seconds": result.seconds}
        if result.best is not None:
            metrics["best_dev_f1"] = result.best["dev_f1"]
        metrics.update({f"test_f1_{name}": f1 for name, f1 in result.test.items()})
        study_run.log_metrics(metrics, step=0)
        study_run.end("KILLED" if result.interrupted else "FINISHED")
    _print(result)
    if result.interrupted:
        raise typer.Exit(130)  # stopped by Ctrl-C: what was found is written; the shell's code for SIGINT


def portable(values: dict[str, Any]) -> dict[str, Any]:
    """A config (``model_dump``) that means the same in any working directory: an encoder given as a local folder
    and a SQLite tracking store as absolute paths (the data and output paths are absolute already). Trials on a Ray
    cluster run in other folders."""
    import os

    out = {**values, "model": dict(values["model"]), "tracking": dict(values["tracking"])}
    name = out["model"].get("name")
    if isinstance(name, str) and Path(name).exists():
        out["model"]["name"] = str(Path(name).resolve())
    uri = out["tracking"].get("uri")
    prefix = "sqlite:///"
    if isinstance(uri, str) and uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        out["tracking"]["uri"] = prefix + os.path.abspath(uri[len(prefix) :])
    return out


class DataTraits(NamedTuple):
    """What of the training data shapes the default search space."""

    documents: bool  # most sentences have a document id: context sentences are searched
    nests: bool  # entities nest (in a layer or across layers): the span head is among the heads searched
    layers: tuple[str, ...]  # the layers of the layered model the trials train (() for a model of one layer)


def _data_traits(config: Any) -> DataTraits:
    """The training data's :class:`DataTraits` (all false where it cannot be read: the trial reports why)."""
    from nerforge.data.layers import depths, entity_spans
    from nerforge.data.splits import read_data_splits
    from nerforge.training.layering import trained_layers

    try:
        splits = read_data_splits(config.data)
    except Exception:  # noqa: BLE001 - the trial will report a data problem properly
        return DataTraits(False, False, ())
    train = splits.get("train", [])
    nests = any(any(depths(entity_spans(ex))) for ex in train if ex.spans is not None)
    layers = tuple(name for name, _ in trained_layers(config, splits))
    return DataTraits(sum(ex.doc_id is not None for ex in train) > len(train) // 2, nests, layers)


def _check_layer_weights(space: dict[str, Any], layers: tuple[str, ...]) -> None:
    """Refuse searched loss weights of layers the trials' model does not have (every trial would fail).

    Raises:
        ConfigError: one line naming the unknown layers and the known ones.
    """
    from nerforge.errors import ConfigError
    from nerforge.tuning.space import layer_of

    named = [layer for name in space if (layer := layer_of(name)) is not None]
    unknown = [layer for layer in named if layer not in layers]
    if not unknown:
        return
    if not layers:
        raise ConfigError(f"[tune] layer_weights: {', '.join(unknown)}: the trials train a model of one layer of "
                          "entities; loss weights are for a layered model (data with several layers)")  # fmt: skip
    raise ConfigError(f"[tune] layer_weights: {', '.join(unknown)} is not a layer of the data (the layers: "
                      f"{', '.join(layers)})")  # fmt: skip


def _print(result: Any) -> None:
    out = result.output
    lines = [f"{result.trials} trials ({result.pruned} pruned, {result.failed} failed) in "
             f"{result.seconds / 60:.1f} min of a {result.budget_s / 60:.1f} min budget"
             + (" (interrupted)" if result.interrupted else "")]  # fmt: skip
    if result.best is not None:
        best = result.best
        settings = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in best.items()
                             if k not in ("trial", "dev_f1"))  # fmt: skip
        lines.append(f"best: trial {best['trial']}, dev F1 {best['dev_f1']:.4f} ({settings})")
        if result.default_dev_f1 is not None:
            lines.append(f"defaults (trial 0): dev F1 {result.default_dev_f1:.4f}")
        if result.test:
            lines.append(
                "test F1 (read once, after the search): "
                + ", ".join(f"{name} {f1:.4f}" for name, f1 in result.test.items())
            )
        lines += [f"model: {result.model}", f"config: {result.best_toml} (nerforge train {result.best_toml} "
                  "trains it again)"]  # fmt: skip
    else:
        lines.append("no trial completed: no model (a larger --budget lets one finish)")
    lines.append(f"leaderboard: {out / 'leaderboard.md'}; plots: {out / 'plots'}")
    typer.echo("\n".join(lines))


def register(app: typer.Typer) -> None:
    app.command("tune")(tune_cli)
