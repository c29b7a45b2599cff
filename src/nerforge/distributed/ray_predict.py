"""Batch prediction on Ray: the input cut into parts, a pool of tagger actors, resumable part files, one merged output.

How a run goes (``nerforge predict MODEL INPUT --engine ray --output OUT``):

1. **Plan** (driver): :func:`nerforge.distributed.io.plan_parts` cuts the input into parts of ``part_size`` records
   (checking every record), unless ``OUT.parts/plan.json`` already holds the plan of this very job.
2. **Tag** (workers): a Ray Data pipeline over the *descriptions* of the parts not yet done
   (``from_items(...).map_batches(PartTagger, compute=ActorPoolStrategy(size=num_workers))``). Each actor loads the
   model once (``Tagger.load``, torch or ONNX backend) and then, for each part it gets, reads just that part from
   the input, tags it and writes ``OUT.parts/part-N.*`` itself. Nothing but part descriptions and small summaries
   passes through the object store, so memory stays bounded whatever the input size.
3. **Merge** (driver): parts are concatenated in part order (= input order) into ``OUT``.

Identical results: the engine batches texts within chunks of ``chunk_size`` (1024, as in ``nerforge predict``), and
a text's scores can change in the 6th decimal with the batch it is padded with. Parts are therefore whole chunks
(``part_size`` must be a multiple of ``chunk_size``), so every chunk, every batch and every score is the one the
single-process run computes.

Without ``address`` a local Ray instance is started (no dashboard, a small object store) and stopped at the end; with
one, the job joins that cluster. An already initialised Ray session (``ray.init`` in the caller) is used as is.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from nerforge.distributed.io import fingerprint, is_local, plan_parts, read_part, resolve_inputs, url_to_fs
from nerforge.distributed.parts import PartResult, PartStore, output_columns
from nerforge.errors import MissingDependencyError, NerforgeError, UsageError
from nerforge.prediction.engine import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_SIZE
from nerforge.threads import usable_cpus

logger = logging.getLogger(__name__)

OBJECT_STORE_BYTES = 256 * 1024 * 1024  # part descriptions and summaries only; Ray's floor is 75 MiB
_LOG_EVERY_S = 10.0


@dataclass(frozen=True)
class RayOptions:
    """How to run on Ray.

    Attributes:
        address: a Ray cluster to join (``auto``, ``ray://host:10001``, ``host:6379``); ``None`` starts a local one.
        num_workers: tagger actors, each with its own copy of the model; ``None``: as many as the CPUs Ray has
            (this machine's usable cores for a local instance) allow, at ``cpus_per_worker`` each.
        cpus_per_worker: CPUs Ray reserves per actor (also its torch threads unless ``threads`` is given).
        gpus_per_worker: GPUs per actor (``device="cuda"`` needs at least 1).
        threads: torch threads per actor.
        part_size: records per part file (a multiple of ``chunk_size``).
        chunk_size: records the engine batches together (as ``Tagger.load(chunk_size=...)``).
        batch_size: windows per forward pass.
        backend: ``"torch"``, ``"onnx"`` or ``None`` (what ``nerforge.json`` says).
        device: the torch device inside each actor.
        keep_parts: keep ``OUT.parts`` after merging.
        object_store_bytes: object store size of a local Ray instance.
    """

    address: str | None = None
    num_workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    threads: int | None = None
    part_size: int = DEFAULT_CHUNK_SIZE
    chunk_size: int = DEFAULT_CHUNK_SIZE
    batch_size: int = DEFAULT_BATCH_SIZE
    backend: str | None = None
    device: str = "cpu"
    keep_parts: bool = False
    object_store_bytes: int = OBJECT_STORE_BYTES

    def check(self) -> None:
        if self.num_workers is not None and self.num_workers < 1:
            raise UsageError(f"--num-workers must be at least 1, got {self.num_workers}")
        if self.batch_size < 1 or self.chunk_size < 1:
            raise UsageError("--batch-size and --chunk-size must be at least 1")
        if self.part_size < 1 or self.part_size % self.chunk_size:
            raise UsageError(
                f"--part-size {self.part_size} must be a positive multiple of --chunk-size {self.chunk_size}, so that "
                "texts are batched exactly as in a single-process run"
            )
        if self.device.startswith("cuda") and self.gpus_per_worker <= 0:
            raise UsageError("--device cuda on Ray needs GPUs per worker (gpus_per_worker > 0)")


@dataclass
class RaySummary:
    """What a Ray prediction run did."""

    output: str
    texts: int = 0
    entities: Counter[str] = field(default_factory=Counter)
    parts: int = 0
    parts_skipped: int = 0
    seconds: float = 0.0
    worker_seconds: dict[str, float] = field(default_factory=dict)  # time spent reading, tagging, writing parts


def _model_fingerprint(model: str) -> str:
    """Names, sizes and stamps of the model directory's files and the bytes of its metadata."""
    fs, path = url_to_fs(model)
    if not fs.isdir(path):
        raise UsageError(f"{model}: model directory not found")
    digest = hashlib.sha256()
    for info in sorted(fs.ls(path, detail=True), key=lambda i: i["name"]):
        stamp = info.get("mtime") or info.get("LastModified") or info.get("ETag") or ""
        digest.update(f"{info['name'].rsplit('/', 1)[-1]}|{info.get('size')}|{stamp}\n".encode())
    return digest.hexdigest()


def _job(
    model: str, input_url: str, files: list[str], output: str, text_column: str, whole_file: bool, options: RayOptions
) -> dict[str, Any]:
    return {
        "model": model,
        "model_files": _model_fingerprint(model),
        "backend": options.backend,
        "device": options.device,
        "input": input_url,
        "files": [fingerprint(f) for f in files],
        "output": output,
        "text_column": text_column,
        "whole_file": whole_file,
        "part_size": options.part_size,
        "chunk_size": options.chunk_size,
        "batch_size": options.batch_size,
    }


def _local_model(model: str) -> str:
    """A local directory with the model: ``model`` itself, or a copy of a remote (fsspec URL) model directory."""
    fs, path = url_to_fs(model)
    if is_local(fs):
        return path
    target = tempfile.mkdtemp(prefix="nerforge-model-")
    fs.get(path.rstrip("/") + "/", target, recursive=True)
    return target


def _check_model(model: str, options: RayOptions) -> None:
    """Load a local model once on the driver, so that a model error shows as itself before any worker starts
    (Ray reports a failed actor constructor only as a dead actor)."""
    from nerforge.prediction.tagger import Tagger

    fs, path = url_to_fs(model)
    if is_local(fs):
        Tagger.load(path, chunk_size=options.chunk_size, progress=False, backend=options.backend)


class PartTagger:
    """A Ray actor: loads the model once, then tags whole parts and writes their files (``map_batches`` UDF)."""

    def __init__(
        self, *, model: str, output: str, columns: list[str], text_column: str, options: dict[str, Any]
    ) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from nerforge.prediction.heap import settle_loaded_objects
        from nerforge.prediction.tagger import Tagger
        from nerforge.threads import set_torch_threads

        opts = RayOptions(**options)
        threads = opts.threads or max(1, int(opts.cpus_per_worker))
        set_torch_threads(threads)
        extra: dict[str, Any] = {"backend": opts.backend} if opts.backend else {}
        if opts.device == "cpu":  # an ONNX model's session takes the actor's share of the cores too, not them all
            from nerforge.prediction.onnx_backend import SessionSettings

            extra["onnx_settings"] = SessionSettings(threads=threads)
        self.tagger = Tagger.load(
            _local_model(model),
            batch_size=opts.batch_size,
            chunk_size=opts.chunk_size,
            device=opts.device,
            progress=False,
            **extra,
        )
        settle_loaded_objects()  # the worker keeps this model for its lifetime
        self.store = PartStore(output)
        self.columns = columns
        self.text_column = text_column
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from nerforge.distributed.io import Part

        out: dict[str, list[Any]] = {"result": [], "error": []}
        for text in batch["part"]:
            part = Part.from_json(str(text))
            start = time.perf_counter()
            try:
                result = self.store.write_part(part.index, self._tag(part), self.columns)
                if result.rows != part.rows:
                    raise UsageError(
                        f"part {part.index}: {result.rows} records where the plan has {part.rows}; the input changed "
                        "since planning; delete the .parts folder and run again"
                    )
            except NerforgeError as exc:
                out["result"].append("")
                out["error"].append(str(exc))
                continue
            result.seconds, result.worker = round(time.perf_counter() - start, 3), self.name
            self.store.mark_done(result)
            out["result"].append(result.to_json())
            out["error"].append("")
        return out

    def _tag(self, part: Any) -> Iterator[tuple[Any, Any]]:
        records = list(read_part(part, text_column=self.text_column))  # one part: at most part_size records
        yield from zip(records, self.tagger.iter_predict(r.text for r in records), strict=True)


@dataclass
class _Progress:
    total_parts: int
    total_texts: int
    done_texts: int = 0
    done_parts: int = 0
    started: float = field(default_factory=time.perf_counter)
    last_log: float = 0.0

    def update(self, result: PartResult) -> None:
        self.done_parts += 1
        self.done_texts += result.rows
        now = time.perf_counter()
        logger.debug("part %d: %d texts in %.1fs on %s", result.index, result.rows, result.seconds, result.worker)
        if now - self.last_log >= _LOG_EVERY_S or self.done_parts == self.total_parts:
            rate = self.done_texts / max(now - self.started, 1e-9)
            left = (self.total_texts - self.done_texts) / rate if rate else math.inf
            logger.info(
                "progress: %d/%d parts, %d/%d texts, %.1f texts/s, about %s left",
                self.done_parts, self.total_parts, self.done_texts, self.total_texts, rate, _duration(left),
            )  # fmt: skip
            self.last_log = now


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}min"


def _absolute(url: str) -> str:
    """A local path made absolute (globs kept); a URL with a scheme as it is."""
    return url if "://" in str(url) else os.path.abspath(url)


def worker_message(exc: BaseException) -> str:
    """The one line that says why a Ray worker failed: the nerforge error inside Ray's report when there is one
    (Ray wraps it in its own exception with the worker's traceback), else the report's first line."""
    text = str(exc)
    found = re.findall(r"nerforge\.errors\.\w+: (.+)", text)
    if found:
        return found[-1].strip()
    return next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)


def _start_ray(options: RayOptions) -> bool:
    """Connect to Ray; returns whether this call started the session (and so must stop it)."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray") from None
    if ray.is_initialized():
        logger.info("using the Ray session already started in this process")
        return False
    if options.address:
        from nerforge.cluster import join_cluster

        join_cluster(options.address)
    else:
        cpus = math.ceil(options.num_workers * options.cpus_per_worker) if options.num_workers else usable_cpus()
        logger.info(
            "starting a local Ray instance (%d CPUs, %d MiB object store)", cpus, options.object_store_bytes >> 20
        )
        ray.init(
            num_cpus=cpus,
            num_gpus=math.ceil((options.num_workers or 1) * options.gpus_per_worker) or None,
            include_dashboard=False,
            object_store_memory=options.object_store_bytes,
            logging_level=logging.WARNING,
        )
    return True


def _run_parts(
    model: str,
    output: str,
    pending: list[Any],
    columns: list[str],
    text_column: str,
    options: RayOptions,
    progress: _Progress,
) -> None:
    import ray
    import ray.data

    items = [{"part": p.to_json()} for p in pending]
    workers = options.num_workers or max(1, int(ray.cluster_resources().get("CPU", 1) // options.cpus_per_worker))
    logger.info("%d worker(s) for %d part(s)", min(workers, len(items)), len(items))
    dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        PartTagger,
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=min(workers, len(items)), max_tasks_in_flight_per_actor=1),
        num_cpus=options.cpus_per_worker,
        num_gpus=options.gpus_per_worker or None,
        fn_constructor_kwargs={
            "model": model, "output": output, "columns": columns, "text_column": text_column, "options": asdict(options),
        },
    )  # fmt: skip
    context = ray.data.DataContext.get_current()
    saved = context.enable_progress_bars, context.print_on_execution_start
    context.enable_progress_bars = context.print_on_execution_start = False  # nerforge logs its own progress
    try:
        for row in dataset.iter_rows():
            if row.get("error"):  # a nerforge error in a worker (Ray would keep only its traceback text)
                raise NerforgeError(row["error"])
            progress.update(PartResult.from_json(row["result"]))
    finally:
        context.enable_progress_bars, context.print_on_execution_start = saved


def predict_on_ray(
    model: str,
    input_url: str,
    output: str,
    *,
    text_column: str = "text",
    whole_file: bool = False,
    options: RayOptions | None = None,
) -> RaySummary:
    """Tag every text of ``input_url`` on Ray and write ``output`` (``.jsonl``, ``.csv`` or ``.parquet``).

    Rerunning an interrupted job skips the parts already written (see :mod:`nerforge.distributed.parts`).

    Raises:
        MissingDependencyError: Ray is not installed (``pip install 'nerforge[ray]'``).
        UsageError, DataFormatError, ModelError: as ``nerforge predict``.
    """
    options = options or RayOptions()
    options.check()
    # the workers run in the cluster's working directory, not the driver's: local paths must be absolute
    model, input_url, output = (_absolute(u) for u in (model, input_url, output))
    started = time.perf_counter()
    store = PartStore(output)
    files, _ = resolve_inputs(input_url)
    job = _job(model, input_url, files, output, text_column, whole_file, options)
    plan = store.load_plan(job)
    if plan is None:
        plan, _ = plan_parts(input_url, text_column=text_column, part_size=options.part_size, whole_file=whole_file)
        store.save_plan(job, plan)
    columns = output_columns(plan)
    done = store.completed()
    pending = [p for p in plan.parts if p.index not in done]
    summary = RaySummary(output, parts=len(plan.parts), parts_skipped=len(plan.parts) - len(pending))
    if summary.parts_skipped:
        logger.info("resuming: %d of %d parts already done in %s", summary.parts_skipped, len(plan.parts), store.url)
    progress = _Progress(len(pending), sum(p.rows for p in pending))
    if pending:
        _check_model(model, options)
        stop = _start_ray(options)
        try:
            _run_parts(model, output, pending, columns, text_column, options, progress)
        except Exception as exc:
            if not type(exc).__module__.startswith("ray"):
                raise
            raise UsageError(f"a Ray worker failed: {worker_message(exc)}") from None
        finally:
            if stop:
                import ray

                ray.shutdown()
        done = store.completed()
    missing = [p.index for p in plan.parts if p.index not in done]
    if missing:
        raise UsageError(f"parts {missing[:5]} were not written; rerun the same command to finish them")
    store.merge(plan.parts, columns)
    for result in done.values():
        summary.texts += result.rows
        summary.entities.update(result.entities)
        if result.index in {p.index for p in pending}:
            summary.worker_seconds[result.worker] = summary.worker_seconds.get(result.worker, 0.0) + result.seconds
    if not options.keep_parts:
        store.clear()
    summary.seconds = time.perf_counter() - started
    logger.info("wrote %s (%d texts, %d parts, %.1fs)", output, summary.texts, summary.parts, summary.seconds)
    return summary
