"""ONNX Runtime as a prediction :class:`~nerforge.prediction.engine.Backend`.

A directory written by ``nerforge export --onnx`` holds ``model.onnx`` (inputs ``input_ids``, ``attention_mask`` and
any the head adds, int64, shape ``(batch, seq)``; output ``logits``, float32, ``(batch, seq, num_tags)``), the tokenizer, ``config.json``
and ``nerforge.json`` with ``backend="onnx"``. :func:`load_onnx_backend` turns it into the backend of a
:class:`~nerforge.prediction.tagger.Tagger`; the engine in front of the backend is the same as for PyTorch (windows,
length-sorted batches, bounded chunks, results in input order), so only the forward pass changes.

EXAMPLE:
    >>> tagger = Tagger.load("runs/model-onnx")                 # doctest: +SKIP  (picks ONNX from nerforge.json)
    >>> tagger = Tagger.load("runs/model-onnx", backend="onnx")  # doctest: +SKIP  (the same, explicitly)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nerforge.errors import MissingDependencyError, ModelError, UsageError
from nerforge.model_dir import INPUT_NAMES, ONNX_FILE, OUTPUT_NAME, ModelMeta
from nerforge.threads import physical_cores

logger = logging.getLogger(__name__)

# Graph inputs of an encoder that no head plan gives, and the PyTorch model fills with zeros by default.
ZERO_INPUTS = frozenset({"token_type_ids"})

# ONNX Runtime graph rewrites left out on CPU (SessionSettings.unfused). Measured on our int8 exports (MiniLM-L6,
# one thread, CoNLL-2003 batches of 32): ONNX Runtime's fused SkipLayerNormalization kernel took 1.3 ms a call where
# the Add and LayerNormalization it replaces take about 0.25; leaving that rewrite out tags 11-12% more words per
# CPU-second at batch 32 and up to 10% at batch 1, and changes nothing on float32 graphs, where the rewrite does not
# apply (docs/benchmarks.md, *Fused transformer graphs*; `nerforge bench --all-fusions` measures the other way).
CPU_UNFUSED = ("SkipLayerNormFusion",)


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or :class:`MissingDependencyError` naming the ``onnx`` extra."""
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError("onnxruntime", "onnx") from None
    return onnxruntime


@dataclass(frozen=True)
class SessionSettings:
    """How an ONNX Runtime session runs.

    Attributes:
        threads: intra-op threads; ``None`` means one per physical core (:func:`physical_cores`).
        optimization: graph optimisation level: ``"all"`` (default), ``"extended"``, ``"basic"`` or ``"none"``.
        providers: execution providers in order of preference (default: CPU).
        spinning: let idle intra-op threads spin (busy-wait) for the next piece of work, ONNX Runtime's default;
            ``False`` makes them sleep instead (see ``docs/benchmarks.md``, *ONNX Runtime threads*).
        parallel: how ``threads`` share the work on CPU: ``"batches"`` (default) runs up to ``threads`` batches at
            once, each on one thread of its own (the engine hands them out; nothing to coordinate inside a batch,
            so a second thread costs almost no CPU-seconds: *Words per CPU-second against spaCy*); ``"intra"`` runs
            one batch at a time with its operators split over ``threads`` threads (what a server that tags one
            batch at a time needs, and a single long text: every thread works on it).
        unfused: ONNX Runtime graph rewrites (its optimizer names) left out when the session loads the graph;
            ``None`` (default) leaves out :data:`CPU_UNFUSED` on a CPU-only session, the ones measured slower there,
            and none on other providers; ``()`` keeps every rewrite.
        optimized_path: where to write the graph as ONNX Runtime rewrote it at load (for inspection), or ``None``.
        profile_prefix: record ONNX Runtime's per-operator profile; the session's ``end_profiling()`` writes it as
            JSON to a file named from this prefix and returns its path (``bench/ort_fusions.py --profile``), or
            ``None`` (default): no profile.
    """

    threads: int | None = None
    optimization: str = "all"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    spinning: bool = True
    parallel: str = "batches"
    unfused: tuple[str, ...] | None = None
    optimized_path: str | None = None
    profile_prefix: str | None = None

    @property
    def cpu_only(self) -> bool:
        return tuple(self.providers) == ("CPUExecutionProvider",)

    @property
    def disabled_optimizers(self) -> tuple[str, ...]:
        """The rewrites left out of this session (``unfused``, or the default for the providers)."""
        if self.unfused is not None:
            return tuple(self.unfused)
        return CPU_UNFUSED if self.cpu_only else ()

    @property
    def concurrent_batches(self) -> int:
        """Batches the engine may run at once: ``threads`` when they run batches of their own on CPU, else 1."""
        threads = self.threads if self.threads is not None else physical_cores()
        return max(1, threads) if self.parallel == "batches" and self.cpu_only else 1


_LEVELS = {
    "none": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def make_session(path: str | Path, settings: SessionSettings = SessionSettings()) -> Any:
    """An ``onnxruntime.InferenceSession`` over ``path`` with ``settings``.

    Raises:
        MissingDependencyError: onnxruntime is not installed.
        UsageError: an unknown optimisation level, thread count or provider.
        ModelError: the file cannot be loaded.
    """
    ort = import_onnxruntime()
    if settings.optimization not in _LEVELS:
        raise UsageError(
            f"unknown ONNX optimisation level {settings.optimization!r}; choose one of: {', '.join(_LEVELS)}"
        )
    threads = settings.threads if settings.threads is not None else physical_cores()
    if threads < 1:
        raise UsageError(f"ONNX Runtime threads must be at least 1, got {threads}")
    if settings.parallel not in ("batches", "intra"):
        raise UsageError(f"unknown ONNX Runtime parallelism {settings.parallel!r}; choose batches or intra")
    if settings.concurrent_batches > 1:
        threads = 1  # each batch on one thread: the engine runs concurrent_batches of them at once
    available = set(ort.get_available_providers())
    missing = [p for p in settings.providers if p not in available]
    if missing:
        raise UsageError(f"ONNX Runtime providers {missing} are not available here; available: {sorted(available)}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[settings.optimization])
    options.log_severity_level = 3  # errors only
    if not settings.spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if settings.optimized_path is not None:
        options.optimized_model_filepath = str(settings.optimized_path)
    if settings.profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(settings.profile_prefix)
    try:
        session = ort.InferenceSession(
            str(path),
            sess_options=options,
            providers=list(settings.providers),
            disabled_optimizers=list(settings.disabled_optimizers),
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types, all plain Exceptions
        raise ModelError(f"{path}: ONNX Runtime cannot load the graph: {exc}") from None
    logger.debug("ONNX Runtime session over %s: %d thread(s), optimisation %s, rewrites left out: %s", path, threads,
                 settings.optimization, ", ".join(settings.disabled_optimizers) or "none")  # fmt: skip
    return session


class OnnxBackend:
    """An exported token-classification graph run by ONNX Runtime, as a prediction backend.

    The graph's inputs are fed by name from what the head's plan gives (:meth:`logits`), so a new head needs no
    change here. An encoder input the plan never gives, ``token_type_ids``, gets zeros (PyTorch's default).

    Args:
        path: the ``.onnx`` file.
        settings: threads, optimisation level, providers.
        inputs: the inputs the model's plan gives (:attr:`~nerforge.modeling.plan.HeadPlan.input_names`), checked
            against the graph's at load; ``None`` checks them at the first batch instead.

    Raises:
        ModelError: the graph lacks ``input_ids``, ``attention_mask`` or the ``logits`` output, or takes inputs
            the plan does not give (or the other way round).
    """

    def __init__(
        self, path: str | Path, settings: SessionSettings = SessionSettings(), *, inputs: Sequence[str] | None = None
    ) -> None:
        self.path = Path(path)
        self.settings = settings
        self.session = make_session(self.path, settings)
        self.concurrency = settings.concurrent_batches  # the engine runs this many batches at once (thread-safe run)
        self.input_names = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if not set(INPUT_NAMES) <= set(self.input_names) or OUTPUT_NAME not in outputs:
            raise ModelError(
                f"{self.path}: graph inputs {sorted(self.input_names)} and outputs {outputs} are not those of a "
                f"nerforge export (inputs {list(INPUT_NAMES)}, output {OUTPUT_NAME!r}); re-export with "
                "'nerforge export --onnx'"
            )
        if inputs is not None:
            self._check_inputs(inputs)

    def _check_inputs(self, given: Sequence[str] | Mapping[str, Any]) -> None:
        missing = [n for n in self.input_names if n not in given and n not in ZERO_INPUTS]
        unused = [n for n in given if n not in self.input_names]
        if missing or unused:
            raise ModelError(
                f"{self.path}: the graph takes inputs {self.input_names} but the model's head gives {list(given)}; "
                "re-export the model with 'nerforge export --onnx'"
            )

    def logits(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        feed = {}
        for name in self.input_names:
            if name in inputs:
                feed[name] = np.ascontiguousarray(inputs[name], dtype=np.int64)
            elif name in ZERO_INPUTS:
                feed[name] = np.zeros_like(inputs["input_ids"], dtype=np.int64)
            else:
                self._check_inputs(inputs)
        (out,) = self.session.run([OUTPUT_NAME], feed)
        return out


def onnx_file(directory: str | Path, meta: ModelMeta) -> Path:
    """The graph file of an exported model directory (named in ``nerforge.json``, default ``model.onnx``)."""
    info = meta.onnx
    name = info.file if info is not None else ONNX_FILE
    path = Path(directory) / str(name)
    if path.name != str(name) or not path.is_file():
        raise ModelError(
            f"{directory}: {name} is missing; export the model with "
            f"'nerforge export {directory} --onnx --output DIR' and load DIR"
        )
    return path


def load_onnx_backend(
    directory: str | Path, meta: ModelMeta, *, device: str = "cpu", settings: SessionSettings | None = None
) -> OnnxBackend:
    """The ONNX graph in ``directory`` as a :class:`~nerforge.prediction.engine.Backend`, checked against ``meta``.

    ``device`` ``"cpu"`` runs on the CPU provider; ``"cuda"`` asks for ONNX Runtime's CUDA provider. The
    :class:`~nerforge.prediction.tagger.Tagger` in front of it is built by ``Tagger.load`` (this module does not
    know the Tagger: the arrow points one way).
    """
    if settings is None:
        settings = SessionSettings(providers=_providers_for(device))
    from nerforge.modeling.plan import HeadPlan

    plan = HeadPlan.from_meta(meta)
    backend = OnnxBackend(onnx_file(directory, meta), settings, inputs=plan.input_names)
    _check_output_width(backend, meta, plan.num_outputs)
    return backend


def _providers_for(device: str) -> tuple[str, ...]:
    if device == "cpu":
        return ("CPUExecutionProvider",)
    if device == "cuda":
        return ("CUDAExecutionProvider", "CPUExecutionProvider")
    raise UsageError(f"the ONNX backend runs on 'cpu' or 'cuda', not {device!r}")


def _check_output_width(backend: OnnxBackend, meta: ModelMeta, expected: int) -> None:
    """``expected``: the tags of every layer of the model's head (``len(meta.tags)`` for one layer)."""
    shape = next(o.shape for o in backend.session.get_outputs() if o.name == OUTPUT_NAME)
    width = shape[-1] if shape else None
    if isinstance(width, int) and width != expected:
        raise ModelError(f"{backend.path}: the graph predicts {width} labels but nerforge.json lists {expected} tags")
