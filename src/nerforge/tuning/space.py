"""The search space of ``nerforge tune``: which settings a trial draws, from what, and as which config keys.

A space is a mapping from a **setting** to its **domain**:

* a range ``{low, high}`` (``log = true`` draws on a log scale; integers when both ends are integers), or
* a list of choices, or
* one value (fixed: every trial trains with it).

Settings (each becomes config keys of a trial, as ``nerforge train --set`` would give them):

========================  =====================================================================================
``learning_rate``         ``training.learning_rate``
``batch_size``            ``training.batch_size``
``warmup_ratio``          ``training.warmup_ratio``
``weight_decay``          ``training.weight_decay``
``epochs``                ``training.epochs`` (a cap: early stopping on dev F1 still ends a trial sooner)
``head``                  the ``model.head`` keys of a named head (``shape+crf``, ``crf``, ``shape+softmax``,
                          ``plain``, ``span``: :data:`nerforge.modeling.head.HEAD_PRESETS`; ``span`` by default only
                          where entities nest)
``context``               the head's document context sentences on each side (only where the data has documents)
``class_weights``         ``model.class_weights`` (``"balanced"`` or ``"none"``; softmax heads only: a trial that
                          draws it with a CRF head trains without)
``model``                 ``model.name`` (the encoder, when the user lists several)
``layer_weights.NAME``    a layered model's loss weight of the layer ``NAME`` (``model.head.layer_weights``; a
                          ``[tune.layer_weights]`` table gives one domain per layer; a trial that draws the span
                          head, which has one layer, trains without)
========================  =====================================================================================

:func:`default_space` is what a user gets without a ``[tune]`` table; a ``[tune]`` table replaces the domains it
names (and adds settings; a setting given as one value is fixed). :func:`parse_space` checks a space and says in
one line what is wrong (an unknown setting, a range with ``low > high``, an empty list, a log range that reaches 0).

A layered model's loss weights are searched by default for every layer but the first (the first stays at 1: the
weights only matter relative to each other), from 0.5 to 4 on a log scale. Which layer the shared encoder serves
worse than a model of its own, and by how much, depends on the data (on SkillSpan, weight 2 on the knowledge layer
brought both layers level with flat models of their own: ``docs/benchmarks.md``, *Layered models*), so the weight is
chosen on dev like the other settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nerforge.errors import ConfigError
from nerforge.modeling.head import HEAD_PRESETS, searched_head_keys

SETTINGS = ("learning_rate", "batch_size", "warmup_ratio", "weight_decay", "epochs", "head", "context",
            "class_weights", "model", "layer_weights")  # fmt: skip
NO_CLASS_WEIGHTS = "none"
LAYER_WEIGHT = "layer_weights"  # a layer's weight is the setting "layer_weights.NAME"
DEFAULT_LAYER_WEIGHTS = {"low": 0.5, "high": 4.0, "log": True}


def layer_of(setting: str) -> str | None:
    """The layer a ``layer_weights.NAME`` setting weighs (``None`` for every other setting)."""
    prefix = LAYER_WEIGHT + "."
    return setting[len(prefix) :] if setting.startswith(prefix) and len(setting) > len(prefix) else None


@dataclass(frozen=True)
class Domain:
    """What one setting may take: a range (``low``/``high``, ``log``), or ``choices`` (one choice: fixed)."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def fixed(self) -> bool:
        return len(self.choices) == 1

    def describe(self) -> str:
        if self.choices:
            return self.choices[0] if self.fixed else " | ".join(str(c) for c in self.choices)
        return f"{self.low:g} .. {self.high:g}" + (" (log)" if self.log else "")

    def distribution(self) -> Any:
        """The Optuna distribution :meth:`draw` samples from (``None`` for a fixed setting, which is not drawn)."""
        import optuna

        if self.fixed:
            return None
        if self.choices:
            return optuna.distributions.CategoricalDistribution(list(self.choices))
        if self.integer:
            return optuna.distributions.IntDistribution(int(self.low or 0), int(self.high or 0), log=self.log)
        return optuna.distributions.FloatDistribution(float(self.low or 0.0), float(self.high or 0.0), log=self.log)

    def draw(self, trial: Any) -> Any:
        """A value from an Optuna ``trial``."""
        if self.choices:
            return self.choices[0] if self.fixed else trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low or 0), int(self.high or 0), log=self.log)
        return trial.suggest_float(self.name, float(self.low or 0.0), float(self.high or 0.0), log=self.log)


def _domain(name: str, raw: Any) -> Domain:
    if name not in SETTINGS and layer_of(name) is None:
        raise ConfigError(f"[tune] {name}: not a setting nerforge tune searches; known: {', '.join(SETTINGS)}")
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"low", "high", "log"}
        if unknown or not {"low", "high"} <= set(raw):
            raise ConfigError(f"[tune] {name}: a range is {{low = A, high = B}} (log = true for a log scale), got "
                              f"{dict(raw)}")  # fmt: skip
        low, high, log = raw["low"], raw["high"], raw.get("log", False)
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (low, high)):
            raise ConfigError(f"[tune] {name}: the ends of a range are numbers, got {low!r} and {high!r}")
        if low > high:
            raise ConfigError(f"[tune] {name}: low {low:g} is above high {high:g}: the range holds no value")
        if not isinstance(log, bool) or (log and low <= 0):
            raise ConfigError(f"[tune] {name}: a log range needs low > 0, got low {low:g}")
        domain = Domain(name, float(low), float(high), log, isinstance(low, int) and isinstance(high, int))
    elif isinstance(raw, (list, tuple)):
        if not raw:
            raise ConfigError(f"[tune] {name}: an empty list of choices: no trial could draw a value")
        domain = Domain(name, choices=tuple(dict.fromkeys(raw)))
    else:
        domain = Domain(name, choices=(raw,))
    _check_values(domain)
    return domain


def _check_values(domain: Domain) -> None:
    name = domain.name
    if name == "head":
        bad = [c for c in domain.choices if c not in HEAD_PRESETS]
        if bad or not domain.choices:
            raise ConfigError(f"[tune] head: {bad or 'a range'} is not a head; choose among {', '.join(HEAD_PRESETS)}")
    elif name == "class_weights":
        bad = [c for c in domain.choices if c not in ("balanced", NO_CLASS_WEIGHTS)]
        if bad or not domain.choices:
            raise ConfigError(f"[tune] class_weights: choose among 'balanced' and '{NO_CLASS_WEIGHTS}', got {bad}")
    elif name == "model":
        if not domain.choices or any(not isinstance(c, str) or not c for c in domain.choices):
            raise ConfigError("[tune] model: a list of encoders (directories or hub ids), e.g. ['default', 'DIR']")
    elif domain.choices:
        bad = [c for c in domain.choices if isinstance(c, bool) or not isinstance(c, (int, float))]
        if bad:
            raise ConfigError(f"[tune] {name}: numbers only, got {bad}")
    positive = {"learning_rate", "batch_size", "epochs"}
    values = list(domain.choices) or [domain.low, domain.high]
    if (name in positive or layer_of(name) is not None) and any(isinstance(v, (int, float)) and v <= 0 for v in values):
        raise ConfigError(f"[tune] {name}: must be above 0, got {values}")
    if name in ("warmup_ratio", "weight_decay") and any(isinstance(v, (int, float)) and not 0 <= v < 1 for v in values):
        raise ConfigError(f"[tune] {name}: must be in [0, 1), got {values}")
    if name in ("batch_size", "context") and any(isinstance(v, float) and not v.is_integer() for v in values):
        raise ConfigError(f"[tune] {name}: whole numbers only, got {values}")


def default_space(
    *, has_documents: bool, nests: bool = False, epochs_cap: float = 10.0, layers: Sequence[str] = ()
) -> dict[str, Any]:
    """The space a user gets without a ``[tune]`` table (see the module docstring): the span head among the heads
    where entities nest, context sentences where the data has documents, and the loss weight of every layer but the
    first where a layered model is trained (``layers``: its layers' names)."""
    space: dict[str, Any] = {
        "learning_rate": {"low": 2e-5, "high": 3e-4, "log": True},
        "batch_size": [8, 16, 32],
        "warmup_ratio": {"low": 0.0, "high": 0.2},
        "head": ["shape+crf", "crf", "plain"],
        "epochs": epochs_cap,
    }
    if nests:
        space["head"] = [*space["head"], "span"]
    if has_documents:
        space["context"] = [0, 1, 2]
    if len(layers) > 1:
        space[LAYER_WEIGHT] = {name: dict(DEFAULT_LAYER_WEIGHTS) for name in layers[1:]}
    return space


def parse_space(raw: Mapping[str, Any]) -> dict[str, Domain]:
    """Check a space (see the module docstring).

    Raises:
        ConfigError: one line naming the setting and what is wrong.
    """
    if not raw:
        raise ConfigError("[tune] is empty: nothing to search")
    space = {}
    for name, value in raw.items():
        if name == LAYER_WEIGHT:  # a table of layers, each with its domain: one setting per layer
            if not isinstance(value, Mapping) or not value or {"low", "high"} <= set(value):  # a range, no layer
                raise ConfigError("[tune] layer_weights: a table of layer names, each with its weights, e.g. "
                                  "{knowledge = {low = 1.0, high = 3.0}}")  # fmt: skip
            for layer, domain in value.items():
                space[f"{LAYER_WEIGHT}.{layer}"] = _domain(f"{LAYER_WEIGHT}.{layer}", domain)
        else:
            space[name] = _domain(name, value)
    if all(d.fixed for d in space.values()):
        raise ConfigError("[tune] fixes every setting: there is nothing to search (give a range or choices)")
    return space


def trial_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    """The config keys (``section.key``) of a trial's drawn values."""
    keys: dict[str, Any] = {}
    plain = {"learning_rate": "training.learning_rate", "batch_size": "training.batch_size",
             "warmup_ratio": "training.warmup_ratio", "weight_decay": "training.weight_decay",
             "epochs": "training.epochs", "model": "model.name"}  # fmt: skip
    for name, value in values.items():
        if name in plain:
            keys[plain[name]] = int(value) if name == "batch_size" else value
    keys.update(searched_head_keys(values.get("head"), values.get("context"), values.get("class_weights")))
    weights = {layer: float(v) for name, v in values.items() if (layer := layer_of(name)) is not None}
    if weights and keys.get("model.head.span") is not True:  # a span head has one layer: nothing to weigh
        keys[f"model.head.{LAYER_WEIGHT}"] = weights  # merged into the config's own weights (trial_config)
    return keys
