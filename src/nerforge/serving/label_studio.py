"""Label Studio's ML backend protocol on the nerforge server, under ``/label-studio``.

In a Label Studio project, *Settings → Model → Connect model* with the URL ``http://HOST:PORT/label-studio``; Label
Studio then calls:

* ``GET /label-studio/health`` (and ``GET /label-studio/``): ``{"status": "UP", "model_class": ..., ...}``;
* ``POST /label-studio/setup`` with ``{"project", "schema": "<View>...</View>", ...}``: ``{"model_version"}``;
* ``POST /label-studio/predict`` with ``{"tasks": [{"id", "data": {...}}], "label_config", "project", "params"}``:
  ``{"results": [{"model_version", "score", "result": [...]}, ...], "model_version"}``, one prediction per task, in
  task order, each result item ``{"from_name", "to_name", "type": "labels", "value": {"start", "end", "text",
  "labels"}, "score"}`` with offsets in code points.

Label Studio sends every task a user selects in one ``/predict`` request and counts a failed request as no
prediction at all, so this route takes any number of tasks of any length (split into the batcher's pieces, long
texts tagged in segments; the body limit is ``label_studio_max_body_bytes``, 64 MB), and a task it cannot tag (no
text, not valid Unicode, or not reached by ``label_studio_deadline_s``, kept under Label Studio's own 100 s wait)
gets an empty prediction with an ``error`` while the others are answered. ``model_version`` is the model's one
version string (:attr:`nerforge.model_dir.ModelMeta.model_version`), the same as in files ``nerforge predict``
writes, so pre-annotations imported from a file are not predicted twice.

The names come from the labeling config: its ``<Labels name=... toName=...>`` tag (the first one, or the one whose
``toName`` is a ``<Text>`` tag) and that ``<Text name=... value="$field">`` tag, whose ``$field`` says which key of
``task.data`` holds the text. Entity types are matched to the config's ``<Label value=...>`` names case-insensitively;
types the config does not list are left out (Label Studio would refuse them). Without a config the defaults are
``label``, ``text`` and ``data.text``. Training requests (``/train``, a ``START_TRAINING`` ``/webhook``) start a
new version in the background when the server learns (``nerforge serve --learn``,
:mod:`nerforge.serving.learning`) and are answered with 501 otherwise.
"""

from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from nerforge.prediction.annotation_formats import label_studio_prediction
from nerforge.serving.body_errors import json_type
from nerforge.serving.guards import ApiError, error_response

PREFIX = "/label-studio"
LATE_ANSWER_S = 15.0  # the route's request limit is the tagging deadline plus this, to answer what was done

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelConfig:
    """What nerforge needs of a Label Studio labeling config."""

    from_name: str = "label"
    to_name: str = "text"
    data_key: str = "text"
    labels: tuple[str, ...] = ()
    controls: dict[str, tuple[str, ...]] = field(default_factory=dict)  # every <Labels> on the text: its labels

    def label_for(self, entity_type: str, control: str | None = None) -> str | None:
        """The config's name for a model type (case-insensitive) in ``control`` (default: the chosen one), the type
        itself without a label list, or None."""
        labels = self.controls.get(control, self.labels) if control is not None else self.labels
        if not labels:
            return entity_type
        folded = {name.casefold(): name for name in labels}
        return folded.get(entity_type.casefold())


def parse_label_config(xml: Any, field: str = "label_config") -> LabelConfig:
    """The names of a ``<View>`` labeling config (see the module docstring).

    Raises:
        ApiError: 400 when ``xml`` is not a string, cannot be parsed or has no ``<Labels>`` tag.
    """
    if xml is None:
        return LabelConfig()
    if not isinstance(xml, str):
        raise ApiError(
            400, "bad_label_config", f'"{field}" must be the labeling config as a string of XML, got {json_type(xml)}'
        )
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
    controls = {el.get("name") or "": tuple(x.get("value") or "" for x in el.iter("Label") if x.get("value"))
                for el in labels if (el.get("toName") or "text") == to_name}  # fmt: skip
    return LabelConfig(chosen.get("name") or "label", to_name, value.lstrip("$"), names, controls)


# Label Studio's webhook actions for new or changed annotations (``serve --learn-every N`` counts them)
ANNOTATION_ACTIONS = frozenset({"ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED"})


def _project_id(body: dict[str, Any]) -> int:
    """The project a webhook or ``/train`` body names (``project.id``, or ``project`` itself)."""
    project = body.get("project")
    project_id = project.get("id") if isinstance(project, dict) else project
    if isinstance(project_id, str) and project_id.split(".")[0].isdigit():
        project_id = int(project_id.split(".")[0])  # /train sends "3.1733154321": the id, then a timestamp
    if isinstance(project_id, bool) or not isinstance(project_id, int):
        raise ApiError(400, "bad_request", "the body names no project (project.id or project)")
    return project_id


def _annotation_count(body: dict[str, Any]) -> int:
    """How many annotations a webhook reports: ``ANNOTATIONS_CREATED`` lists them, the others carry one."""
    many = body.get("annotations")
    return len(many) if isinstance(many, list) else 1


def router(service: Any) -> APIRouter:
    """The routes, predicting through ``service`` (the app's batcher and limits; its model may be swapped for a new
    version while it serves, so the version is read per request)."""
    # Not in the OpenAPI spec of nerforge's own API (/openapi.json): this is Label Studio's protocol, documented there
    api = APIRouter(prefix=PREFIX, tags=["label-studio"], include_in_schema=False)

    @api.get("/health")
    @api.get("/")
    async def health() -> dict[str, Any]:
        """Label Studio's liveness check, with the learning job's state when the server learns."""
        out = {"status": "UP", "model_class": "nerforge", "model_version": service.model_version,
               "labels": list(service.predictor.info.labels)}  # fmt: skip
        if service.learner is not None:
            out["learning"] = service.learner.state()
        return out

    @api.post("/setup")
    async def setup(body: Any = Body(default_factory=dict)) -> dict[str, Any]:  # noqa: B008
        """Label Studio's project set-up: the config is checked, the model version returned."""
        body = _object(body)
        field = "schema" if body.get("schema") is not None else "label_config"
        parse_label_config(body.get(field), field)
        return {"model_version": service.model_version}

    @api.post("/predict")
    async def predict(body: Any = Body(default_factory=dict)) -> dict[str, Any]:  # noqa: B008
        """Pre-annotations for Label Studio's tasks, one per task, in order: any number of tasks, any length (the
        route's body limit aside); a task that cannot be tagged gets an empty prediction with its ``error``, and the
        others are answered."""
        body = _object(body)
        config = parse_label_config(body.get("label_config"))
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            raise ApiError(400, "bad_request", "'tasks' must be a list of Label Studio tasks")
        deadline = time.monotonic() + service.settings.label_studio_deadline_s
        model_version = service.model_version
        texts = [task_text(task, n, config) for n, task in enumerate(tasks)]
        errors = {n: text for n, text in enumerate(texts) if isinstance(text, TaskError)}
        good = [n for n in range(len(tasks)) if n not in errors]
        found = await service.predict_until([str(texts[n]) for n in good], deadline)
        results: list[dict[str, Any]] = [{}] * len(tasks)
        late = 0
        for n, entities in zip(good, found, strict=True):
            if entities is None:
                late += 1
                errors[n] = TaskError(
                    f"not tagged within {service.settings.label_studio_deadline_s:g} s (the "
                    "request held more text than that); retrieve predictions for it again"
                )
                continue
            results[n] = label_studio_prediction(entities, from_name=config.from_name, to_name=config.to_name,
                                                 model_version=model_version, label_for=config.label_for,
                                                 controls=frozenset(config.controls))  # fmt: skip
        for n, error in errors.items():
            results[n] = {"model_version": model_version, "score": 0.0, "result": [], "error": str(error)}
        if errors:
            logger.warning(
                "label studio: %d of %d tasks not predicted (%d past the deadline); first: %s",
                len(errors),
                len(tasks),
                late,
                errors[min(errors)],
            )
        return {"results": results, "model_version": model_version}

    @api.post("/train")
    @api.post("/webhook")
    async def train(body: Any = Body(default_factory=dict)) -> JSONResponse:  # noqa: B008
        """Label Studio's *Start training* (a ``START_TRAINING`` webhook, or the older ``/train``): a new version
        trained in the background from the project's annotations, when the server learns (``--learn``)."""
        if service.learner is None:
            return error_response(
                501,
                "not_implemented",
                "this server does not learn: start it with 'nerforge serve "
                "MODEL --learn --label-studio-url URL', or export the project and run 'nerforge "
                "train' on it",
            )
        body = _object(body)
        action = body.get("action")
        if action in ANNOTATION_ACTIONS and service.learner.options.learn_every > 0:
            started = service.learner.annotations_changed(_project_id(body), _annotation_count(body))
            return JSONResponse(service.learner.state(), status_code=201 if started else 200)
        if action is not None and action != "START_TRAINING":
            return JSONResponse({"status": "ignored", "action": str(action)[:80]})
        started = service.learner.start(_project_id(body))
        return JSONResponse(service.learner.state(), status_code=201 if started else 409)

    return api


class TaskError(str):
    """Why one task of a ``/predict`` request cannot be tagged (its prediction says so; the others are answered)."""


def task_text(task: Any, n: int, config: LabelConfig) -> str | TaskError:
    """The text of task ``n`` (0-based) from ``data.<key>``, or a :class:`TaskError` saying what it lacks."""
    where = f"task {task.get('id', n + 1) if isinstance(task, dict) else n + 1}"
    data = task.get("data") if isinstance(task, dict) else None
    text = data.get(config.data_key) if isinstance(data, dict) else None
    if not isinstance(text, str):
        got = "no task object" if not isinstance(task, dict) else f"data.{config.data_key} is {json_type(text)}"
        return TaskError(f"{where} has no text in data.{config.data_key} (the <Text> tag's value): {got}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return TaskError(f"{where} is not valid Unicode (unpaired surrogate at character {exc.start})")
    return text


def _object(body: Any) -> dict[str, Any]:
    """The request body as a JSON object (Label Studio sends one), else a 400 saying what came instead."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", f"the body must be a JSON object, got {json_type(body)}")
    return body
