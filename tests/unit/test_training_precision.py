"""training.precision: which precision 'auto' picks, and what reaches the Trainer's arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerforge.config import TrainingConfig
from nerforge.training.trainer import cpu_flags, resolve_precision, training_arguments


def test_cpu_flags_reads_the_first_flags_line(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\nflags\t: fpu\n")
    assert cpu_flags(info) == frozenset({"fpu", "avx2", "avx512_bf16"})
    assert cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [({"avx2"}, "fp32"), ({"avx2", "avx512f"}, "fp32"), ({"avx512_bf16"}, "bf16"), ({"amx_bf16", "amx_tile"}, "bf16")],
)
def test_auto_on_cpu_needs_native_bf16(flags: set[str], expected: str) -> None:
    assert resolve_precision("auto", cuda=False, flags=frozenset(flags)) == expected


@pytest.mark.parametrize("choice", ["fp32", "bf16"])
def test_explicit_choice_is_kept(choice: str) -> None:
    assert (
        resolve_precision(choice, cuda=False, flags=frozenset({"avx512_bf16"} if choice == "fp32" else set())) == choice
    )


def test_training_arguments_follow_the_choice(tmp_path: Path) -> None:
    fp32 = training_arguments(TrainingConfig(precision="fp32"), tmp_path, has_dev=True)
    bf16 = training_arguments(TrainingConfig(precision="bf16"), tmp_path, has_dev=True)
    assert (fp32.bf16, bf16.bf16) == (False, True)
    assert fp32.optim == bf16.optim == "adamw_torch_fused"
