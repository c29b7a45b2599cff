"""Fine-tuning: examples -> windows -> the Hugging Face Trainer -> an atomic model directory.

``dataset`` builds labelled windows, ``collate`` batches them, ``trainer`` sets up the Trainer, ``callbacks`` and
``tracking`` hook into it, ``model_card`` writes the README, and ``run.train`` ties them together.
"""

from nerforge.training.run import TrainResult, train

__all__ = ["TrainResult", "train"]
