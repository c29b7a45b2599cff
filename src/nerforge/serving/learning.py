"""Learning from Label Studio while serving (``nerforge serve MODEL --learn --label-studio-url URL``).

When Label Studio asks for training (*Start training*, a ``START_TRAINING`` webhook or the older ``/train``), a
:class:`Learner` runs one job in a background thread while the server keeps answering with the served version:

1. **fetch** the project's annotated tasks through Label Studio's API (``GET /api/projects/ID/export?exportType=JSON``,
   the API token from ``LABEL_STUDIO_API_KEY``);
2. **split** them, by a hash of each task's id, into training tasks and a fixed held-out slice (``holdout_share``;
   a task stays on its side in every later job);
3. **train** a new version (with the trainer handed in: ``nerforge.training.run.train``), continuing from the
   served one (:func:`nerforge.training.run.warm_start`) on the
   training tasks plus the served model's own training data where its ``config.resolved.yaml`` names files that are
   still there (replayed, so earlier knowledge is not forgotten), the held-out slice as dev, for ``epochs`` epochs;
   into ``versions_dir/vNNNN`` (written atomically by ``nerforge train``);
4. **score** the served version and the new one on the held-out slice (strict entity F1);
5. **swap** the new version in when its F1 is at least the served one's plus ``min_gain``; the served model is
   untouched otherwise, and when anything fails or the process is killed (a half-trained version never appears).

Every version is recorded in ``versions_dir/versions.json`` with its scores and data counts, whether it was served
and why; serving an earlier version again is ``nerforge serve versions_dir/vNNNN`` (rollback).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerforge.errors import NerforgeError, UsageError
from nerforge.io_utils import atomic_write_text

logger = logging.getLogger(__name__)

API_KEY_ENV = "LABEL_STUDIO_API_KEY"
VERSIONS_FILE = "versions.json"


@dataclass(frozen=True)
class LearnOptions:
    """How the server learns.

    Attributes:
        label_studio_url: Label Studio's base URL (``http://127.0.0.1:8080``).
        api_key: its API token (sent as ``Authorization: Token KEY``).
        versions_dir: where the versions go (``vNNNN`` folders and ``versions.json``).
        holdout_share: the share of annotated tasks held out to score versions (by task id, fixed).
        epochs: epochs of each new version's training.
        min_gain: a new version is served when its held-out F1 is at least the served one's plus this.
        fetch_timeout_s: longest wait for Label Studio's export.
        learn_every: also start a job after this many new or updated annotations (Label Studio's
            ``ANNOTATION_CREATED``/``ANNOTATIONS_CREATED``/``ANNOTATION_UPDATED`` webhooks); 0 for *Start training* only.
    """

    label_studio_url: str
    api_key: str
    versions_dir: Path
    holdout_share: float = 0.2
    epochs: float = 3.0
    min_gain: float = 0.0
    fetch_timeout_s: float = 120.0
    learn_every: int = 0

    def __post_init__(self) -> None:
        if not self.label_studio_url.startswith(("http://", "https://")):
            raise UsageError(f"--label-studio-url must be an http(s) URL, got {self.label_studio_url!r}")
        if not self.api_key:
            raise UsageError(
                f"learning needs Label Studio's API token in {API_KEY_ENV} (Account & Settings → Access Token)"
            )
        if not 0 < self.holdout_share < 1:
            raise UsageError(f"the held-out share must be between 0 and 1, got {self.holdout_share}")
        if self.epochs <= 0:
            raise UsageError(f"the epochs of a new version must be positive, got {self.epochs}")
        if self.learn_every < 0:
            raise UsageError(f"--learn-every must be 0 (off) or a number of annotations, got {self.learn_every}")


def held_out(task_id: Any, share: float) -> bool:
    """Whether a task belongs to the held-out slice: a hash of its id, so it stays there in every job."""
    digest = hashlib.sha256(str(task_id).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def annotated(task: Any) -> bool:
    """A task with at least one annotation that was not cancelled."""
    annotations = task.get("annotations") if isinstance(task, dict) else None
    return isinstance(annotations, list) and any(
        isinstance(a, dict) and not a.get("was_cancelled") for a in annotations
    )


class Learner:
    """One learning job at a time for a served model (see the module docstring)."""

    def __init__(
        self, service: Any, model_dir: str | Path, options: LearnOptions, trainer: Callable[[Any], Any]
    ) -> None:
        self.service = service
        self.options = options
        self.trainer = trainer  # nerforge.training.run.train, handed in from above (serving does not import training)
        self.versions_dir = Path(options.versions_dir)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._state: dict[str, Any] = {"status": "idle"}
        self._new_annotations = 0  # counted towards options.learn_every since the last job started
        self._record = self._load_record(Path(model_dir))

    # -- the record of versions ----------------------------------------------------------------------------------

    def _load_record(self, model_dir: Path) -> dict[str, Any]:
        """The record of versions, with the model this server was started with as the served one (a server started
        again on an earlier version, a rollback, serves that one, whatever the record said before)."""
        from nerforge.model_dir import ModelMeta

        path = self.versions_dir / VERSIONS_FILE
        record: dict[str, Any] = {"served": None, "versions": []}
        if path.is_file():
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict) and isinstance(loaded.get("versions"), list):
                record = loaded
        here = model_dir.resolve()
        match = next((v for v in record["versions"] if Path(v["dir"]).resolve() == here), None)
        if match is None:
            match = {"name": f"v{len(record['versions']):04d}", "dir": str(here),
                     "model_version": ModelMeta.load(model_dir).model_version,
                     "decision": "the model the server was started with"}  # fmt: skip
            record["versions"].append(match)
        for version in record["versions"]:
            version["served"] = version is match
        record["served"] = match["name"]
        return record

    def _save_record(self) -> None:
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.versions_dir / VERSIONS_FILE, json.dumps(self._record, indent=2) + "\n")

    @property
    def served_dir(self) -> Path:
        name = self._record["served"]
        return Path(next(v["dir"] for v in self._record["versions"] if v["name"] == name))

    # -- the job -------------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The job's state for the health routes: ``status`` (idle, running, done, failed), its step, times, the
        last scores and the served version."""
        with self._lock:
            return {**self._state, "served_version": self._record["served"],
                    "versions": len(self._record["versions"]), "new_annotations": self._new_annotations,
                    "learn_every": self.options.learn_every}  # fmt: skip

    def _set(self, **values: Any) -> None:
        with self._lock:
            self._state.update(values)

    def annotations_changed(self, project: int, count: int) -> bool:
        """Count ``count`` new or updated annotations of ``project``; start a job when ``learn_every`` of them have
        come in since the last one started (and none is running: the count then waits for the next change).
        ``True`` when a job started."""
        with self._lock:
            self._new_annotations += max(0, count)
            due = 0 < self.options.learn_every <= self._new_annotations
        return due and self.start(project)

    def start(self, project: int) -> bool:
        """Start a job for Label Studio project ``project``; ``False`` when one is running."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._new_annotations = 0
            self._state = {"status": "running", "step": "fetching", "project": project, "started": time.time()}
            self._thread = threading.Thread(target=self._run, args=(project,), name="nerforge-learn", daemon=True)
            self._thread.start()
            return True

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the running job (tests, and a server that stops)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self, project: int) -> None:
        try:
            outcome = self._job(project)
            self._set(status="done", step=None, finished=time.time(), **outcome)
        except NerforgeError as exc:
            logger.warning("learning failed: %s", exc)
            self._set(status="failed", step=None, finished=time.time(), message=str(exc))
        except Exception as exc:  # noqa: BLE001 - the server must keep serving whatever the job hits
            logger.exception("learning failed")
            self._set(
                status="failed", step=None, finished=time.time(), message=f"unexpected {type(exc).__name__}: {exc}"
            )

    def _job(self, project: int) -> dict[str, Any]:
        fetched = fetch_tasks(self.options, project)
        tasks = [t for t in fetched if annotated(t)]
        unannotated = len(fetched) - len(tasks)  # no annotation, or only cancelled ones: said in the record
        holdout = [t for t in tasks if held_out(t.get("id"), self.options.holdout_share)]
        train = [t for t in tasks if not held_out(t.get("id"), self.options.holdout_share)]
        if not holdout or not train:
            raise UsageError(
                f"project {project} has {len(tasks)} annotated tasks ({len(train)} to train on, "
                f"{len(holdout)} held out); annotate more before training"
            )
        name = f"v{len(self._record['versions']):04d}"
        work = self.versions_dir / "data" / name
        work.mkdir(parents=True, exist_ok=True)
        train_file, holdout_file = work / "train.json", work / "holdout.json"
        atomic_write_text(train_file, json.dumps(train, ensure_ascii=False))
        atomic_write_text(holdout_file, json.dumps(holdout, ensure_ascii=False))
        served = self.served_dir
        self._set(
            step="training",
            version=name,
            train_tasks=len(train),
            holdout_tasks=len(holdout),
            unannotated_tasks=unannotated,
        )
        out = self.versions_dir / name
        train_version(served, train_file, holdout_file, out, self.options.epochs, self.trainer)
        self._set(step="scoring")
        served_f1, new_f1 = score(served, holdout_file), score(out, holdout_file)
        better = new_f1 >= served_f1 + self.options.min_gain
        from nerforge.model_dir import ModelMeta

        entry = {"name": name, "dir": str(out.resolve()), "model_version": ModelMeta.load(out).model_version,
                 "created": time.time(), "project": project, "train_tasks": len(train), "holdout_tasks": len(holdout),
                 "unannotated_tasks": unannotated,
                 "holdout_f1": round(new_f1, 6), "served_holdout_f1": round(served_f1, 6), "served": better,
                 "decision": (f"served: held-out F1 {new_f1:.4f} >= {served_f1:.4f} + {self.options.min_gain:g}"
                              if better else f"kept the served version: held-out F1 {new_f1:.4f} < "
                              f"{served_f1:.4f} + {self.options.min_gain:g}")}  # fmt: skip
        if better:
            from nerforge.serving.predictor import load_predictor

            self.service.swap(load_predictor(out))
        with self._lock:  # state() reads the record from the server's threads
            if better:
                for version in self._record["versions"]:
                    version["served"] = False
                self._record["served"] = name
            self._record["versions"].append(entry)
            self._save_record()
        logger.info("learning: %s %s", name, entry["decision"])
        return {
            "last_version": name,
            "last_holdout_f1": entry["holdout_f1"],
            "served_holdout_f1": entry["served_holdout_f1"],
            "swapped": better,
            "decision": entry["decision"],
        }


def fetch_tasks(options: LearnOptions, project: int) -> list[dict[str, Any]]:
    """The project's tasks with their annotations, from Label Studio's JSON export.

    Raises:
        UsageError: Label Studio cannot be reached, refuses the token, or answers with something else than a list.
    """
    import httpx

    url = f"{options.label_studio_url.rstrip('/')}/api/projects/{project}/export"
    try:
        response = httpx.get(url, params={"exportType": "JSON", "download_all_tasks": "false"},
                             headers={"Authorization": authorization(options)},
                             timeout=options.fetch_timeout_s)  # fmt: skip
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot reach Label Studio at {options.label_studio_url}: {exc}") from None
    if response.status_code in (401, 403):
        raise UsageError(f"Label Studio refused the API token ({response.status_code}); check {API_KEY_ENV}")
    if response.status_code != 200:
        raise UsageError(f"Label Studio answered {response.status_code} to the export of project {project}")
    try:
        tasks = response.json()
    except ValueError:
        raise UsageError("Label Studio's export is not JSON") from None
    if not isinstance(tasks, list):
        raise UsageError("Label Studio's export is not a list of tasks")
    return [t for t in tasks if isinstance(t, dict)]


def is_personal_access_token(key: str) -> bool:
    """Label Studio's personal access tokens are JWTs (three dot-separated parts); legacy tokens are hex strings."""
    return key.count(".") == 2 and all(part for part in key.split("."))


def authorization(options: LearnOptions) -> str:
    """The ``Authorization`` header for Label Studio's API: ``Token KEY`` for a legacy token; for a personal access
    token (a refresh token), ``Bearer`` and the access token Label Studio exchanges it for (``/api/token/refresh``).

    Raises:
        UsageError: Label Studio refuses the personal access token.
    """
    import httpx

    if not is_personal_access_token(options.api_key):
        return f"Token {options.api_key}"
    url = f"{options.label_studio_url.rstrip('/')}/api/token/refresh"
    try:
        response = httpx.post(url, json={"refresh": options.api_key}, timeout=options.fetch_timeout_s)
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot reach Label Studio at {options.label_studio_url}: {exc}") from None
    access = response.json().get("access") if response.status_code == 200 else None
    if not isinstance(access, str):
        raise UsageError(
            f"Label Studio refused the personal access token ({response.status_code}); check {API_KEY_ENV}"
        )
    return f"Bearer {access}"


def train_version(
    served: Path, train_file: Path, holdout_file: Path, out: Path, epochs: float, trainer: Callable[[Any], Any]
) -> None:
    """Train the version ``out`` with ``trainer`` (``nerforge.training.run.train``), continuing from ``served``: its
    config (where it has one) with the new tasks added to the training files that still exist, the held-out tasks as
    dev, its labels and head."""
    from nerforge.config import load_config
    from nerforge.model_dir import RESOLVED_CONFIG_FILE, ModelMeta
    from nerforge.modeling.head import HeadSpec

    meta = ModelMeta.load(served)
    replay: list[str] = []
    flags: dict[str, Any] = {}
    resolved = served / RESOLVED_CONFIG_FILE
    if resolved.is_file():
        try:
            before = load_config(resolved)
            files = before.data.train if isinstance(before.data.train, list) else [before.data.train]
            replay = [str(f) for f in files if f is not None and Path(f).is_file()]
        except NerforgeError as exc:
            logger.warning(
                "learning: the served model's config cannot be read (%s); training on the new tasks only", exc
            )
    # the served model's data is read again as it was read (columns, label names and map), each file's format
    # detected (the new tasks are a Label Studio export)
    from nerforge.data.readers.options import READ_OPTION_NAMES

    flags.update({f"data.{key}": value for key, value in meta.reading.items()
                  if key in READ_OPTION_NAMES and key != "format"} if replay else {})  # fmt: skip
    flags.update({
        "data.train": [*replay, str(train_file)], "data.dev": str(holdout_file), "data.test": None,
        "data.labels": meta.types, "model.name": str(served), "model.head": HeadSpec.from_meta(meta).to_dict(),
        "training.epochs": epochs, "output.dir": str(out), "tracking.enabled": False,
    })  # fmt: skip
    config = load_config(None, flags=flags)
    logger.info("learning: training %s from %s on %d file(s)", out.name, served, len(flags["data.train"]))
    trainer(config)


def score(model_dir: Path, data: Path) -> float:
    """Strict entity F1 of the model in ``model_dir`` on ``data`` (types the model does not know count as ``O``)."""
    from nerforge.data.normalize import read_examples
    from nerforge.data.readers.options import ReadOptions
    from nerforge.evaluation import evaluate
    from nerforge.prediction.tagger import Tagger
    from nerforge.tags import tag_type

    tagger = Tagger.load(model_dir, progress=False)
    known = set(tagger.types)
    examples = [ex for ex in read_examples(data, ReadOptions()) if ex.tokens]
    gold = [[t if t == "O" or tag_type(t) in known else "O" for t in ex.tags] for ex in examples]
    predicted = [list(p.tags) for p in tagger.predict_words([list(ex.tokens) for ex in examples])]
    return float(evaluate(gold, predicted).micro.f1)


def options_from_env(url: str, versions_dir: Path, **rest: Any) -> LearnOptions:
    """:class:`LearnOptions` with the API token from :data:`API_KEY_ENV`."""
    return LearnOptions(label_studio_url=url, api_key=os.environ.get(API_KEY_ENV, ""), versions_dir=versions_dir,
                        **rest)  # fmt: skip
