"""Training under a multi-process launcher (``torchrun``, ``accelerate launch``): who does what.

The Hugging Face ``Trainer`` runs data-parallel training by itself when a launcher starts several processes (it reads
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` through ``accelerate``: gloo on CPU, NCCL on GPUs). What nerforge does around
the loop must then happen once, not once per process:

* the work directory is prepared (old checkpoints removed, ``resume.json`` written) by rank 0, and every rank resumes
  from the checkpoint rank 0 chose (:meth:`DistributedContext.from_main`);
* only rank 0 opens an MLflow run;
* every rank trains and runs the final dev prediction (both are collective operations); then all ranks meet at a
  barrier, rank 0 alone writes the model directory atomically, and the others wait for its result;
* only rank 0 removes the work directory;
* on a machine without CUDA, ``ACCELERATE_USE_CPU`` is set so that the Trainer uses DDP over gloo (plain ``torchrun``
  would otherwise leave each process training alone on all the data);
* torch threads are shared out: ``usable cores // processes on this machine`` per process, unless
  ``training.num_threads`` says otherwise.

In a plain single process every method here is a no-op, so :func:`nerforge.training.train` runs the same code both
ways.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from nerforge.errors import NerforgeError

logger = logging.getLogger(__name__)

T = TypeVar("T")

_LAUNCHER_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


class RankFailedError(NerforgeError):
    """The main process failed in a step the other processes were waiting for."""

    code = "E420"


def launched_world_size() -> int:
    """The number of processes a launcher started (``WORLD_SIZE``; 1 without a launcher)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def is_main_process() -> bool:
    """Whether this is rank 0 (or the only process); reads the launcher's ``RANK`` without starting anything."""
    try:
        return int(os.environ.get("RANK", "0")) == 0
    except ValueError:
        return True


@dataclass(frozen=True)
class DistributedContext:
    """This process's place among the training processes.

    Attributes:
        world_size: processes in the job (1: not distributed).
        rank: this process's global index (0 is the main process).
        local_world_size: processes on this machine.
        backend: the ``torch.distributed`` backend (``"gloo"``, ``"nccl"``), ``None`` when not distributed.
    """

    world_size: int = 1
    rank: int = 0
    local_world_size: int = 1
    backend: str | None = None

    @classmethod
    def detect(cls) -> DistributedContext:
        """Read the launcher's environment; with more than one process, join the process group through ``accelerate``
        (the same group the ``Trainer`` then uses)."""
        if launched_world_size() <= 1:
            return cls()
        import torch
        from accelerate import PartialState

        cpu = not torch.cuda.is_available()
        if cpu:
            # Without this, accelerate (and so the Trainer, which rebuilds its state from the environment) sees no
            # distributed setup on a CPU-only machine, and every process would train alone on all the data.
            # ``accelerate launch --cpu`` sets the same variable.
            os.environ["ACCELERATE_USE_CPU"] = "true"
        state = PartialState(cpu=cpu)
        local = int(os.environ.get("LOCAL_WORLD_SIZE", state.num_processes))
        ctx = cls(
            world_size=state.num_processes, rank=state.process_index, local_world_size=local, backend=state.backend
        )
        logger.debug("distributed: rank %d of %d (%s)", ctx.rank, ctx.world_size, ctx.backend)
        if ctx.is_main:
            logger.info(
                "distributed training: %d processes (%d on this machine), backend %s",
                ctx.world_size,
                local,
                ctx.backend,
            )
        return ctx

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def cpu_threads(self, usable_cpus: int, idle_default: Callable[[], int]) -> int:
        """Torch CPU threads for this process: the idle cores alone, or an equal share of the machine's cores when
        several processes share it (their load would otherwise make each think the machine is busy)."""
        if not self.enabled:
            return idle_default()
        return max(1, usable_cpus // max(1, self.local_world_size))

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.enabled:
            from accelerate import PartialState

            PartialState().wait_for_everyone()

    def from_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 only and give every process its result (which must pickle).

        When ``fn`` raises on rank 0, the other processes raise :class:`RankFailedError` instead of waiting forever.
        """
        if not self.enabled:
            return fn()
        from accelerate.utils import broadcast_object_list

        payload: list[Any] = [None]
        if self.is_main:
            try:
                value = fn()
            except BaseException as exc:
                broadcast_object_list([("failed", f"{type(exc).__name__}: {exc}")])
                raise
            payload = [("ok", value)]
        broadcast_object_list(payload)
        status, value = payload[0]
        if status != "ok":
            raise RankFailedError(f"rank 0 failed, so rank {self.rank} stops too: {value}")
        return value

    def params(self) -> dict[str, Any]:
        """What to record with the run: ``{"world_size": 2, "backend": "gloo"}``."""
        return {"world_size": self.world_size, "backend": self.backend or "none"}
