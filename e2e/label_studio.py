"""The annotation loop end to end with a real Label Studio (issue 29, item 3): ``make e2e-label-studio``.

    python e2e/label_studio.py                       # CoNLL-2003 from ../shared, Label Studio in e2e/.work/ls-venv

1. installs Label Studio in a virtual environment of its own (``--ls-venv``; reused when there) and starts it on
   127.0.0.1 with a user and a legacy API token, and the settings a backend on loopback needs;
2. trains a small model with nerforge's defaults on ``--served-sentences`` CoNLL-2003 training sentences and serves it
   with ``nerforge serve --learn --label-studio-url``;
3. creates a project, imports ``--tasks`` sentences as tasks plus ``--long-tasks`` texts of 50,000 characters,
   connects the server as the project's model and retrieves predictions for every task (all in one request, as
   the data manager's *Retrieve predictions* sends them);
4. posts the gold annotations of the sentence tasks through Label Studio's API, presses *Start training*
   (``POST /api/ml/ID/train``), waits for the server's new version, retrieves predictions again;
5. checks: every task has a prediction of one model version both times; after training the predictions carry the
   new version, which scored at least as well as the first on the held-out tasks.

Results: ``e2e/results/label-studio.json`` and the table between the ``label-studio-e2e`` markers of
``docs/annotation-loop.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
NERFORGE = [sys.executable, "-m", "nerforge"]
LABELS = ("PER", "ORG", "LOC", "MISC")
LS_SPEC = "label-studio>=1.20,<2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, what: str, timeout: float = 300, headers: dict | None = None) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5, headers=headers).status_code < 500:
                return
        time.sleep(1)
    raise SystemExit(f"{what} did not start at {url} within {timeout:.0f} s")


def sentences(shared: Path, start: int, count: int) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    from nerforge.data.normalize import read_examples
    from nerforge.data.readers.options import ReadOptions

    examples = [ex for ex in read_examples(shared / "conll2003" / "train.txt", ReadOptions()) if len(ex.tokens) > 3]
    return [(ex.tokens, ex.tags) for ex in examples[start : start + count]]


def task_of(tokens: tuple[str, ...], tags: tuple[str, ...]) -> tuple[str, list[dict]]:
    """A sentence's text (words joined by spaces) and its gold entities as Label Studio results."""
    from nerforge.data.schemes import tags_to_spans

    starts, at = [], 0
    for token in tokens:
        starts.append(at)
        at += len(token) + 1
    text = " ".join(tokens)
    result = []
    for n, span in enumerate(tags_to_spans(list(tags))):
        start, end = starts[span.start], starts[span.end - 1] + len(tokens[span.end - 1])
        result.append({"id": f"g{n}", "from_name": "label", "to_name": "text", "type": "labels",
                       "value": {"start": start, "end": end, "text": text[start:end], "labels": [span.label]}})  # fmt: skip
    return text, result


@contextlib.contextmanager
def process(cmd: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    with log.open("w", encoding="utf-8") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def exported(api, project: int) -> list[dict]:  # type: ignore[no-untyped-def]
    r = api.get(f"/api/projects/{project}/export", params={"exportType": "JSON", "download_all_tasks": "true"})
    r.raise_for_status()
    return r.json()


def retrieve_predictions(api, project: int) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/api/dm/actions", params={"id": "retrieve_tasks_predictions", "project": project},
                 json={"selectedItems": {"all": True, "excluded": []}}, timeout=600)  # fmt: skip
    r.raise_for_status()


def latest_versions(api, tasks: list[dict]) -> list[str | None]:  # type: ignore[no-untyped-def]
    """The model version of each task's latest prediction (the export lists predictions by id only)."""
    out = []
    for task in tasks:
        r = api.get("/api/predictions/", params={"task": task["id"]})
        r.raise_for_status()
        found = r.json()
        found = found.get("results", found) if isinstance(found, dict) else found
        found = sorted((p for p in found if isinstance(p, dict)), key=lambda p: (p.get("created_at") or "", p["id"]))
        out.append(found[-1].get("model_version") if found else None)
    return out


def render(results: dict) -> str:
    lines = [f"Command: `{results['command']}`. Machine: {results['machine']}. Label Studio {results['label_studio']}.",
             "", "| check | result |", "|---|---|"]
    for name, value in results["checks"].items():
        lines.append(f"| {name} | {value} |")
    return "\n".join(lines) + "\n"


def main() -> None:  # noqa: PLR0915 - one scenario, step by step
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--work", type=Path, default=REPO / "e2e" / ".work")
    parser.add_argument("--ls-venv", type=Path, default=None, help="Label Studio's virtual environment")
    parser.add_argument("--served-sentences", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=196)
    parser.add_argument("--long-tasks", type=int, default=4)
    parser.add_argument("--output", type=Path, default=REPO / "e2e" / "results" / "label-studio.json")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "annotation-loop.md")
    args = parser.parse_args()
    import httpx
    from train_compare import machine, update_docs

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    venv = args.ls_venv or work / "ls-venv"
    if not (venv / "bin" / "label-studio").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", LS_SPEC], check=True)
    version = subprocess.run([str(venv / "bin" / "python"), "-c", "import label_studio; print(label_studio.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip

    # 2. the served model
    served_data = work / "served.conll"
    from nerforge.data.writers import write_conll
    from nerforge.types import Example

    write_conll([Example(t, g) for t, g in sentences(args.shared, 0, args.served_sentences)], served_data)
    model = work / "model"
    subprocess.run([*NERFORGE, "train", "--train", str(served_data), "--output", str(model), "--epochs", "3",
                    "--no-tracking", "--no-progress", "--set", f"data.labels={list(LABELS)}",
                    "--set", "data.split={dev=0.15, by='sentence'}"], check=True)  # fmt: skip

    ls_port, nf_port = free_port(), free_port()
    token = secrets.token_hex(20)
    data_dir = Path(tempfile.mkdtemp(prefix="ls-data-", dir=work))
    env = {**os.environ, "ML_BLOCK_LOCAL_IP": "false", "USE_DEFAULT_BANNED_SUBNETS": "false",
           "LATEST_VERSION_CHECK": "false", "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
           "LABEL_STUDIO_API_KEY": token}  # fmt: skip
    ls_cmd = [str(venv / "bin" / "label-studio"), "start", "--no-browser", "--port", str(ls_port), "--internal-host",
              "127.0.0.1", "--data-dir", str(data_dir), "--username", "e2e@example.com", "--password", "e2e-password-1",
              "--user-token", token]  # fmt: skip
    versions_dir = work / "model.versions"
    shutil.rmtree(versions_dir, ignore_errors=True)  # the versions of an earlier run belong to an earlier model
    with process(ls_cmd, work / "label-studio.log", env):
        wait_for(f"http://127.0.0.1:{ls_port}/version", "Label Studio")
        nf_cmd = [*NERFORGE, "serve", str(model), "--port", str(nf_port), "--learn", "--label-studio-url",
                  f"http://127.0.0.1:{ls_port}", "--versions-dir", str(versions_dir)]  # fmt: skip
        with process(nf_cmd, work / "nerforge-serve.log", env):
            wait_for(f"http://127.0.0.1:{nf_port}/healthz", "nerforge serve")
            api = httpx.Client(base_url=f"http://127.0.0.1:{ls_port}", headers={"Authorization": f"Token {token}"},
                               timeout=120)  # fmt: skip
            config = ("<View><Labels name=\"label\" toName=\"text\">" + "".join(f"<Label value=\"{x}\"/>" for x in LABELS)
                      + "</Labels><Text name=\"text\" value=\"$text\"/></View>")  # fmt: skip
            project = api.post("/api/projects/", json={"title": "nerforge e2e", "label_config": config}).json()["id"]
            gold = sentences(args.shared, args.served_sentences, args.tasks)
            texts = [task_of(t, g) for t, g in gold]
            filler = " ".join(text for text, _ in texts)
            long_texts = [(filler * (50_000 // len(filler) + 1))[: 50_000 - k] for k in range(args.long_tasks)]
            payload = [{"data": {"text": text}} for text, _ in texts] + [{"data": {"text": t}} for t in long_texts]
            api.post(f"/api/projects/{project}/import", json=payload).raise_for_status()
            ml = api.post("/api/ml/", json={"url": f"http://127.0.0.1:{nf_port}/label-studio", "project": project,
                                            "title": "nerforge"})  # fmt: skip
            ml.raise_for_status()
            ml_id = ml.json()["id"]
            retrieve_predictions(api, project)
            first = exported(api, project)
            first_versions = latest_versions(api, first)

            by_text = {text: result for text, result in texts}
            for task in first:
                result = by_text.get(task["data"]["text"])
                if result is not None:
                    api.post(f"/api/tasks/{task['id']}/annotations/", json={"result": result}).raise_for_status()
            api.post(f"/api/ml/{ml_id}/train", json={}).raise_for_status()
            deadline = time.monotonic() + 1800
            state: dict = {}
            while time.monotonic() < deadline:
                state = httpx.get(f"http://127.0.0.1:{nf_port}/label-studio/health", timeout=10).json().get("learning", {})
                if state.get("status") in ("done", "failed"):
                    break
                time.sleep(2)
            retrieve_predictions(api, project)
            second_versions = latest_versions(api, exported(api, project))
    record = json.loads((versions_dir / "versions.json").read_text(encoding="utf-8"))
    new = record["versions"][-1] if len(record["versions"]) > 1 else {}
    checks = {
        "tasks (of them 50,000-character texts)": f"{len(payload)} ({args.long_tasks})",
        "tasks with a prediction, first retrieval": sum(v is not None for v in first_versions),
        "model versions, first retrieval": ", ".join(sorted({str(v) for v in first_versions})),
        "learning job": f"{state.get('status')}: {state.get('decision') or state.get('message')}",
        "held-out tasks; F1 new / served": f"{new.get('holdout_tasks')}; {new.get('holdout_f1')} / "
                                           f"{new.get('served_holdout_f1')}",
        "tasks with a prediction, after training": sum(v is not None for v in second_versions),
        "model versions, after training": ", ".join(sorted({str(v) for v in second_versions})),
    }
    ok = (all(v is not None for v in first_versions) and len(set(first_versions)) == 1
          and state.get("status") == "done" and state.get("swapped") and set(second_versions) == {new.get("model_version")})
    checks["passed"] = "yes" if ok else "no"
    command = shlex.join(["python", "e2e/label_studio.py", *sys.argv[1:]])
    results = {"command": command, "machine": machine(), "label_studio": version, "checks": checks}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    update_docs(args.docs, render(results), marker="label-studio-e2e")
    print(render(results))
    if not ok:
        raise SystemExit("the end-to-end check failed; see the table and e2e/.work/*.log")


if __name__ == "__main__":
    main()
