"""A hub id downloads: a stand-in Hugging Face hub on 127.0.0.1 (the routes huggingface_hub downloads from) serves a
tiny model, and ``nerforge train --model ORG/NAME`` with ``HF_ENDPOINT`` pointed at it trains on it, with no
offline mode forced. Offline, unreachable and unknown ids each end in one line that says which it was."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from conftest import build_tiny_encoder

REPO = "acme/tiny-bert"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _Hub(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    requests: list[str] = []

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _not_found(self, code: str) -> None:
        self.send_response(404)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Type", "application/json")
        body = json.dumps({"error": code}).encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self) -> None:
        path = unquote(self.path.split("?", 1)[0])
        self.requests.append(f"{self.command} {path}")
        if path.startswith("/api/models/"):
            rest = path[len("/api/models/") :]
            repo = rest.split("/revision/")[0].split("/tree/")[0]
            if repo != REPO:
                return self._not_found("RepoNotFound")
            if "/tree/" in rest:  # list_repo_tree
                info: object = [
                    {"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                    for f, d in sorted(self.files.items())
                ]
            else:  # repo_info
                info = {"id": REPO, "sha": COMMIT, "siblings": [{"rfilename": f} for f in sorted(self.files)]}
            body = json.dumps(info).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        prefix = f"/{REPO}/resolve/"
        if not path.startswith(prefix):
            return self._not_found("RepoNotFound")
        _, _, name = path[len(prefix) :].partition("/")
        if name not in self.files:
            return self._not_found("EntryNotFound")
        data = self.files[name]
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = _serve
    do_HEAD = _serve


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    model = build_tiny_encoder(tmp_path_factory.mktemp("hub-model"))
    _Hub.files = {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(tmp_path: Path, model: str, endpoint: str, *, offline: bool = False, name: str = "out"):  # type: ignore[no-untyped-def]
    train = tmp_path / "train.conll"
    train.write_text("We\tO\nuse\tO\nGo\tB-TECH\n\nWe\tO\nlike\tO\nRust\tB-TECH\n\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    script = "import sys; from nerforge.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["train", "--train", str(train), "--output", str(tmp_path / name), "--model", model,
            "--max-steps", "2", "--no-tracking"]  # fmt: skip
    return subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=300)


def test_a_hub_id_downloads_into_the_cache_and_trains(hub: str, tmp_path: Path) -> None:
    _Hub.requests = []
    proc = _train(tmp_path, REPO, hub)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert any(r.startswith("GET /acme/tiny-bert/resolve/") for r in _Hub.requests)
    cached = list((tmp_path / "hf-home" / "hub").glob("models--acme--tiny-bert/snapshots/*/model.safetensors"))
    assert cached, "the model was not downloaded into the standard Hugging Face cache"
    meta = json.loads((tmp_path / "out" / "nerforge.json").read_text())
    assert meta["base_model"] == REPO

    # then offline: the cached copy is used, nothing is asked of the hub
    _Hub.requests = []
    proc = _train(tmp_path, REPO, hub, offline=True, name="again")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _Hub.requests == []


def test_an_unknown_hub_id_is_one_line(hub: str, tmp_path: Path) -> None:
    proc = _train(tmp_path, "acme/no-such-model", hub)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("error: 'acme/no-such-model' is not a model on http://127.0.0.1")
        and "Traceback" not in proc.stderr
    )


def test_offline_and_unreachable_are_told_apart(hub: str, tmp_path: Path) -> None:
    proc = _train(tmp_path, "acme/other", hub, offline=True)
    assert proc.returncode == 2
    assert "HF_HUB_OFFLINE is set" in proc.stderr.strip().splitlines()[-1]

    proc = _train(tmp_path, "acme/other", f"http://127.0.0.1:{_free_port()}")
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert "unreachable" in last and "HF_HUB_OFFLINE" not in last and "Traceback" not in proc.stderr
