"""nerforge: a custom named-entity recognizer from a pretrained transformer encoder and your data."""

from nerforge.errors import ConfigError, DataFormatError, ModelError, NerforgeError
from nerforge.types import Corpus, Entity, Example, Finding, LabelSet, Span

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Corpus",
    "DataFormatError",
    "Entity",
    "Example",
    "Finding",
    "LabelSet",
    "ModelError",
    "NerforgeError",
    "Span",
    "__version__",
]
