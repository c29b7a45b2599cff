"""``nerforge tune --workers N``: N processes run trials of one study at once (SQLite in ``OUT/study.db``), each with
its share of the CPU cores."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nerforge.errors import Interrupted
from nerforge.tuning.study import STUDY_FILE, load_optuna, open_study, trial_config, work

logger = logging.getLogger("nerforge.tuning.study")


def worker_main(
    output: str, space_raw: dict[str, Any], values: dict[str, Any], seed: int, deadline: float, threads: int, index: int
) -> None:
    """One worker process of ``--workers N``: trials of the shared study (``OUT/study.db``), each with ``threads``
    CPU threads, until the deadline (``time.monotonic``, one clock for every process of the machine)."""
    from nerforge.training import train
    from nerforge.tuning.space import parse_space

    optuna = load_optuna()
    out = Path(output)
    study = open_study(optuna, out / STUDY_FILE, seed + index, load=True)
    values = {**values, "training": {**values["training"], "num_threads": threads}}

    def make(keys: dict[str, Any], directory: Path) -> Any:
        return trial_config(values, keys, directory, out.name)

    try:
        work(study, parse_space(space_raw), out, seed, deadline, make, train)
    except KeyboardInterrupt:  # the parent reports the interruption
        pass


def run_workers(
    output: Path,
    space_raw: dict[str, Any],
    values: dict[str, Any],
    seed: int,
    workers: int,
    deadline: float,
    cores: int,
) -> None:
    """Run ``workers`` processes of :func:`worker_main` sharing the study, the cores split between them."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # a clean interpreter each: no torch state shared by a fork
    threads = max(1, cores // workers)
    procs = [context.Process(target=worker_main, args=(str(output), space_raw, values, seed, deadline, threads, k),
                             name=f"nerforge-tune-{k}") for k in range(workers)]  # fmt: skip
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join()
    except (KeyboardInterrupt, Interrupted):  # the workers got the same Ctrl-C: their trials stop, they end
        for proc in procs:
            proc.join(timeout=120)
        raise
    failed = [p.name for p in procs if p.exitcode not in (0, None)]
    if failed:
        logger.warning("tune workers that ended with an error: %s", ", ".join(failed))
