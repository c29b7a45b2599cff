"""Serve a model over HTTP: a REST API and a web page (``nerforge serve``). Needs the ``serve`` extra."""

from nerforge.serving.app import create_app
from nerforge.serving.predictor import ModelInfo, Predictor, TaggerPredictor, load_predictor
from nerforge.serving.server import serve
from nerforge.serving.settings import ServeSettings

__all__ = ["ModelInfo", "Predictor", "ServeSettings", "TaggerPredictor", "create_app", "load_predictor", "serve"]
