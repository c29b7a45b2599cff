"""The typed training configuration: its schema (:mod:`nerforge.config.schema`) and how a TOML or YAML file, flags
and ``--set`` overrides become one validated :class:`TrainConfig` (:mod:`nerforge.config.loader`)."""

from nerforge.config.loader import apply_overrides, load_config, parse_overrides, read_config_file
from nerforge.config.schema import (
    PATH_KEYS,
    RESOLVED_CONFIG_FILE,
    DataConfig,
    DistillConfig,
    ModelConfig,
    OutputConfig,
    SampleConfig,
    SplitConfig,
    TrackingConfig,
    TrainConfig,
    TrainingConfig,
)

__all__ = [
    "PATH_KEYS",
    "RESOLVED_CONFIG_FILE",
    "DataConfig",
    "DistillConfig",
    "ModelConfig",
    "OutputConfig",
    "SampleConfig",
    "SplitConfig",
    "TrackingConfig",
    "TrainConfig",
    "TrainingConfig",
    "apply_overrides",
    "load_config",
    "parse_overrides",
    "read_config_file",
]
