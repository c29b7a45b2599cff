"""Our doccano file in a real doccano, shown on its page (issue 29, item 4): ``make e2e-doccano``.

    python e2e/doccano.py                       # doccano in e2e/.work/doccano-venv, installed when missing

1. installs doccano 1.8 in a virtual environment of its own (``--doccano-venv``; reused when there), starts its web
   server and task worker on 127.0.0.1 with an admin user;
2. writes a doccano import with ``nerforge annotate --terms`` from texts with emoji (one a ZWJ sequence), accents and an
   empty line, once with our default offsets (UTF-16 code units) and once with ``--doccano-offsets code-points``;
3. imports both files into two sequence-labelling projects through doccano's API (the path of its *Import Dataset*
   page) and reads every stored span back: the characters a span covers on doccano's page are the UTF-16 slice of the
   text (JavaScript string positions), checked against the term each span was made for;
4. opens the default project's annotation page in Chromium (Playwright, ``/usr/bin/chromium``) and stacks a
   screenshot of every text into ``--screenshot`` for a person to look at.

Results: ``e2e/results/doccano.json`` and the table between the ``doccano-e2e`` markers of
``docs/annotation-loop.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from label_studio import NERFORGE, REPO, free_port, process, wait_for  # noqa: E402

# doccano 1.8.4 declares no upper bounds: environs breaks on marshmallow 4 and its pandas on numpy 2.
DOCCANO_SPEC = ["doccano>=1.8,<1.9", "marshmallow<4", "numpy<2"]
USER, PASSWORD = "admin", "e2e-password-1"
TEXTS = [
    "🚀 Python and Docker are what we use every day.",
    "We love 🎉🎉 Kubernetes, and also café culture with Python.",
    "",
    "Our team 👩‍💻 writes Rust and Go; naïve Java is gone.",
    "Plain line with Docker only.",
]
TERMS = ["Python", "Docker", "Kubernetes", "Rust", "Go", "Java"]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def utf16_slice(text: str, start: int, end: int) -> str:
    """What a JavaScript ``text.slice(start, end)`` returns: positions count UTF-16 code units."""
    return text.encode("utf-16-le")[2 * start : 2 * end].decode("utf-16-le", errors="replace")


def import_file(api, path: Path, name: str) -> int:  # type: ignore[no-untyped-def]
    """A new sequence-labelling project with ``path`` imported the way doccano's import page does it."""
    project = api.post("/v1/projects", json={
        "name": name, "description": "nerforge e2e", "guideline": "", "project_type": "SequenceLabeling",
        "resourcetype": "SequenceLabelingProject", "allow_overlapping": False, "grapheme_mode": False,
        "use_relation": False, "tags": []})  # fmt: skip
    project.raise_for_status()
    pid = project.json()["id"]
    with path.open("rb") as fh:
        upload = api.post("/v1/fp/process/", files={"filepond": (path.name, fh, "application/octet-stream")})
    upload.raise_for_status()
    job = api.post(f"/v1/projects/{pid}/upload", json={
        "format": "JSONL", "task": "SequenceLabeling", "uploadIds": [upload.text.strip()], "column_data": "text",
        "column_label": "label", "delimiter": "", "encoding": "utf_8"})  # fmt: skip
    job.raise_for_status()
    task = job.json()["task_id"]
    for _ in range(120):
        status = api.get(f"/v1/tasks/status/{task}").json()
        if status.get("ready"):
            errors = (status.get("result") or {}).get("error") or status.get("error")
            if errors:
                raise SystemExit(f"doccano refused {path}: {errors}")
            return pid
        time.sleep(1)
    raise SystemExit(f"doccano did not import {path} within 120 s")


def shown_spans(api, pid: int) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """``(text, covered, label)`` of every span doccano stored, ``covered`` as its page shows it."""
    labels = {t["id"]: t["text"] for t in api.get(f"/v1/projects/{pid}/span-types").json()}
    out = []
    examples = api.get(f"/v1/projects/{pid}/examples", params={"limit": 1000}).json()["results"]
    for example in examples:
        for span in api.get(f"/v1/projects/{pid}/examples/{example['id']}/spans").json():
            covered = utf16_slice(example["text"], span["start_offset"], span["end_offset"])
            out.append((example["text"], covered, labels.get(span["label"], "?")))
    return out


def screenshot(base: str, pid: int, count: int, path: Path) -> None:
    """Every text of project ``pid`` on doccano's annotation page, stacked into one PNG."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    shots = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(f"{base}/auth")
        page.wait_for_selector("input[type=password]")
        page.fill("input[type=text]", USER)
        page.fill("input[type=password]", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url("**/projects**")
        page.goto(f"{base}/projects/{pid}")
        page.wait_for_timeout(3000)  # the app loads the project before its links point at it
        # the annotation page's own query string comes from the app's link; a typed URL leaves it blank
        page.get_by_text("Start Annotation").first.click()
        for n in range(count):
            page.wait_for_url(f"**page={n + 1}**")
            page.wait_for_timeout(3000)
            shot = path.with_suffix(f".{n}.png")
            page.screenshot(path=str(shot), clip={"x": 260, "y": 120, "width": 1000, "height": 130})
            shots.append(shot)
            if n + 1 < count:  # the pager's "next" button: the visible chevron-right icon
                page.locator('button:visible:has(path[d^="M8.59,16.58"])').last.click()
        browser.close()
    images = [Image.open(s) for s in shots]
    sheet = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)), "white")
    y = 0
    for image in images:
        sheet.paste(image, (0, y))
        y += image.height
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    for s in shots:
        s.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=REPO / "e2e" / ".work")
    parser.add_argument("--doccano-venv", type=Path, default=None, help="doccano's virtual environment")
    parser.add_argument("--output", type=Path, default=REPO / "e2e" / "results" / "doccano.json")
    parser.add_argument("--screenshot", type=Path, default=REPO / "docs" / "doccano-page.png")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "annotation-loop.md")
    args = parser.parse_args()
    import httpx
    from train_compare import machine, update_docs

    work = args.work / "doccano"
    work.mkdir(parents=True, exist_ok=True)
    venv = args.doccano_venv or args.work / "doccano-venv"
    if not (venv / "bin" / "doccano").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *DOCCANO_SPEC], check=True)
    version = subprocess.run([str(venv / "bin" / "pip"), "show", "doccano"], capture_output=True, text=True,
                             check=True).stdout.split("Version:")[1].split()[0]  # fmt: skip

    pool, terms = work / "pool.txt", work / "terms.txt"
    pool.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    terms.write_text("\n".join(TERMS) + "\n", encoding="utf-8")
    files = {}
    for unit in ("utf-16", "code-points"):
        files[unit] = work / f"doccano-{unit}.jsonl"
        subprocess.run([*NERFORGE, "annotate", str(pool), "--terms", str(terms), "--label", "TECH", "--format",
                        "doccano", "--doccano-offsets", unit, "-o", str(files[unit])], check=True)  # fmt: skip

    db = work / "doccano.sqlite3"
    db.unlink(missing_ok=True)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    doccano = str(venv / "bin" / "doccano")
    subprocess.run([doccano, "init"], env=env, check=True, capture_output=True)
    subprocess.run([doccano, "createuser", "--username", USER, "--password", PASSWORD], env=env, check=True,
                   capture_output=True)  # fmt: skip
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with process([doccano, "webserver", "--port", str(port)], work / "webserver.log", env), \
            process([doccano, "task"], work / "task.log", env):  # fmt: skip
        wait_for(f"{base}/", "doccano", timeout=120)
        key = httpx.post(f"{base}/v1/auth/login/", json={"username": USER, "password": PASSWORD}).json()["key"]
        # token only: the login's session cookie would make doccano ask for a CSRF token
        api = httpx.Client(base_url=base, headers={"Authorization": f"Token {key}"}, timeout=60)
        checks: dict[str, object] = {}
        projects = {}
        for unit, path in files.items():
            projects[unit] = import_file(api, path, f"nerforge {unit}")
            spans = shown_spans(api, projects[unit])
            placed = sum(covered in TERMS for _, covered, _ in spans)
            checks[f"{unit} offsets: spans shown on the right characters"] = f"{placed} of {len(spans)}"
        count = len(api.get(f"/v1/projects/{projects['utf-16']}/examples").json()["results"])
        checks["texts imported (the empty one left out by nerforge)"] = f"{count} of {len(TEXTS)}"
        try:
            screenshot(base, projects["utf-16"], count, args.screenshot)
        except Exception as exc:  # noqa: BLE001 - the numbers above stand without the picture
            print(f"screenshot failed: {exc}", file=sys.stderr)
            args.screenshot.unlink(missing_ok=True)
        checks["screenshot"] = f"`{args.screenshot.relative_to(REPO)}`" if args.screenshot.exists() else "failed"

    results = {"command": "python " + " ".join([Path(sys.argv[0]).resolve().relative_to(REPO).as_posix(), *sys.argv[1:]]),
               "machine": machine(), "doccano": version, "checks": checks}  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [f"Command: `{results['command']}`. Machine: {results['machine']}. doccano {version}.", "",
             "| check | result |", "|---|---|", *(f"| {k} | {v} |" for k, v in checks.items())]  # fmt: skip
    update_docs(args.docs, "\n".join(lines) + "\n", "doccano-e2e")
    print(json.dumps(checks, indent=2, ensure_ascii=False))
    default = checks["utf-16 offsets: spans shown on the right characters"]
    if str(default).split(" of ")[0] != str(default).split(" of ")[1]:
        raise SystemExit(f"spans misplaced on doccano's page: {default}")


if __name__ == "__main__":
    main()
