"""Prediction: raw text or pre-split words in, entities or IOB2 tags out.

``words`` cuts raw text into words with offsets, ``engine`` runs a model over words (windows, length-sorted batches,
IOB2 repair), ``tagger`` is the Python API, ``io`` reads and writes the files of ``nerforge predict``.
"""

from nerforge.prediction.engine import Backend, Engine, TorchBackend, WordPrediction
from nerforge.prediction.tagger import Tagger, entities_from_words
from nerforge.prediction.words import WORDS_V1, WORDS_V2, Word, get_word_tokenizer, tokenize_words

__all__ = [
    "WORDS_V1",
    "WORDS_V2",
    "Backend",
    "Engine",
    "Tagger",
    "TorchBackend",
    "Word",
    "WordPrediction",
    "entities_from_words",
    "get_word_tokenizer",
    "tokenize_words",
]
