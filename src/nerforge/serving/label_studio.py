"""Label Studio's ML backend protocol on the nerforge server, under ``/label-studio``.

In a Label Studio project, *Settings → Model → Connect model* with the URL ``http://HOST:PORT/label-studio``; Label
Studio then calls:

* ``GET /label-studio/health`` (and ``GET /label-studio/``): ``{"status": "UP", "model_class": ..., ...}``;
* ``POST /label-studio/setup`` with ``{"project", "schema": "<View>...</View>", ...}``: ``{"model_version"}``;
* ``POST /label-studio/predict`` with ``{"tasks": [{"id", "data": {...}}], "label_config", "project", "params"}``:
  ``{"results": [{"model_version", "score", "result": [...]}, ...], "model_version"}``, one prediction per task, in
  task order, each result item ``{"from_name", "to_name", "type": "labels", "value": {"start", "end", "text",
  "labels"}, "score"}`` with offsets in code points.

The names come from the labeling config: its ``<Labels name=... toName=...>`` tag (the first one, or the one whose
``toName`` is a ``<Text>`` tag) and that ``<Text name=... value="$field">`` tag, whose ``$field`` says which key of
``task.data`` holds the text. Entity types are matched to the config's ``<Label value=...>`` names case-insensitively;
types the config does not list are left out (Label Studio would refuse them). Without a config the defaults are
``label``, ``text`` and ``data.text``. Training requests (``/train``, ``/webhook``) are answered with 501: the
model is trained with ``nerforge train`` on the project's export.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from nerforge.prediction.annotation_formats import label_studio_prediction
from nerforge.serving.body_errors import json_type
from nerforge.serving.guards import ApiError, error_response

PREFIX = "/label-studio"


@dataclass(frozen=True)
class LabelConfig:
    """What nerforge needs of a Label Studio labeling config."""

    from_name: str = "label"
    to_name: str = "text"
    data_key: str = "text"
    labels: tuple[str, ...] = ()

    def label_for(self, entity_type: str) -> str | None:
        """The config's name for a model type (case-insensitive), the type itself without a label list, or None."""
        if not self.labels:
            return entity_type
        folded = {name.casefold(): name for name in self.labels}
        return folded.get(entity_type.casefold())


def parse_label_config(xml: Any, field: str = "label_config") -> LabelConfig:
    """The names of a ``<View>`` labeling config (see the module docstring).

    Raises:
        ApiError: 400 when ``xml`` is not a string, cannot be parsed or has no ``<Labels>`` tag.
    """
    if xml is None:
        return LabelConfig()
    if not isinstance(xml, str):
        raise ApiError(400, "bad_label_config", f'"{field}" must be the labeling config as a string of XML, got '
                       f"{json_type(xml)}")
    if not xml.strip():
        return LabelConfig()
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ApiError(400, "bad_label_config", f"the labeling config is not valid XML: {exc}") from None
    texts = {el.get("name"): el for el in root.iter() if el.tag in ("Text", "HyperText") and el.get("name")}
    labels = [el for el in root.iter() if el.tag == "Labels" and el.get("name")]
    if not labels:
        raise ApiError(400, "bad_label_config", "the labeling config has no <Labels> tag for named entities")
    chosen = next((el for el in labels if el.get("toName") in texts), labels[0])
    to_name = chosen.get("toName") or "text"
    value = (texts[to_name].get("value") if to_name in texts else None) or "$text"
    names = tuple(label.get("value") or "" for label in chosen.iter("Label") if label.get("value"))
    return LabelConfig(chosen.get("name") or "label", to_name, value.lstrip("$"), names)


def router(service: Any, model_version: str) -> APIRouter:
    """The routes, predicting through ``service`` (the app's batcher and limits)."""
    # Not in the OpenAPI spec of nerforge's own API (/openapi.json): this is Label Studio's protocol, documented there
    api = APIRouter(prefix=PREFIX, tags=["label-studio"], include_in_schema=False)
    info = service.predictor.info

    @api.get("/health")
    @api.get("/")
    async def health() -> dict[str, Any]:
        """Label Studio's liveness check."""
        return {"status": "UP", "model_class": "nerforge", "model_version": model_version,
                "labels": list(info.labels)}  # fmt: skip

    @api.post("/setup")
    async def setup(body: Any = Body(default_factory=dict)) -> dict[str, Any]:  # noqa: B008
        """Label Studio's project set-up: the config is checked, the model version returned."""
        body = _object(body)
        field = "schema" if body.get("schema") is not None else "label_config"
        parse_label_config(body.get(field), field)
        return {"model_version": model_version}

    @api.post("/predict")
    async def predict(body: Any = Body(default_factory=dict)) -> dict[str, Any]:  # noqa: B008
        """Pre-annotations for Label Studio's tasks, one per task, in order."""
        body = _object(body)
        config = parse_label_config(body.get("label_config"))
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            raise ApiError(400, "bad_request", "'tasks' must be a list of Label Studio tasks")
        service.check_count(tasks)
        texts = []
        for n, task in enumerate(tasks):
            data = task.get("data") if isinstance(task, dict) else None
            text = data.get(config.data_key) if isinstance(data, dict) else None
            if not isinstance(text, str):
                raise ApiError(
                    400, "bad_request", f"task {n + 1} has no text in data.{config.data_key} (the <Text> tag's value)"
                )
            service.check_text(text, f"task {n + 1}")
            texts.append(text)
        found = await service.predict(texts)
        results = [
            label_studio_prediction(f, from_name=config.from_name, to_name=config.to_name,
                                    model_version=model_version, label_for=config.label_for)
            for f in found
        ]  # fmt: skip
        return {"results": results, "model_version": model_version}

    @api.post("/train")
    @api.post("/webhook")
    async def train() -> JSONResponse:
        """Not done here: train with ``nerforge train`` on the project's export."""
        return error_response(501, "not_implemented",
                              "nerforge trains offline: export the project and run 'nerforge train' on it")

    return api


def _object(body: Any) -> dict[str, Any]:
    """The request body as a JSON object (Label Studio sends one), else a 400 saying what came instead."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", f"the body must be a JSON object, got {json_type(body)}")
    return body
